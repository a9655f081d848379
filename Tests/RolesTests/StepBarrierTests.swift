import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// The sync/ssp step barrier on its own: no server, no sockets.
@Suite struct StepBarrierTests {
  /// A one-element gradient of `value` from `workerID`.
  func gradient(_ workerID: UInt32, _ sequence: UInt64, at version: UInt64 = 0, _ value: Double)
    -> GradientPush
  {
    GradientPush(
      workerID: workerID, sequence: sequence, computedAtVersion: version,
      rows: [Int(workerID)],
      gradient: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [value]))
  }

  /// Holds `push` at its worker's next clock, as the server does.
  func hold(_ barrier: StepBarrier, _ push: GradientPush, version: UInt64 = 0) {
    barrier.hold(push, inPlace: nil, clock: barrier.clock(of: push.workerID, version: version))
  }

  /// The replies released at `version`, as (worker, sequence) pairs.
  func released(
    _ barrier: StepBarrier, version: UInt64, staleness: UInt64, joined: [UInt32],
    leases: LeasedWork? = nil
  ) -> [[UInt64]] {
    var replies: [[UInt64]] = []
    barrier.releaseReplies(
      version: version, staleness: staleness, joined: joined, leases: leases
    ) { workerID, sequence in replies.append([UInt64(workerID), sequence]) }
    return replies
  }

  @Test func aStepIsCompleteOnceEveryJoinedWorkerContributed() {
    let barrier = StepBarrier()
    #expect(!barrier.isComplete(0, joined: [0, 1], leases: nil))
    hold(barrier, gradient(1, 1, 2))
    #expect(!barrier.isComplete(0, joined: [0, 1], leases: nil))
    #expect(barrier.isComplete(0, joined: [1], leases: nil))
    hold(barrier, gradient(0, 1, 4))
    #expect(barrier.isComplete(0, joined: [0, 1], leases: nil))
    #expect(!barrier.isComplete(1, joined: [0, 1], leases: nil))
  }

  /// Summed in worker-id order whatever the arrival order: here arrival order
  /// (1e16 - 1e16 + 1) would give 1/3, worker-id order rounds the 1 in 1 + 1e16.
  @Test func theAverageSumsInWorkerIDOrderBitForBit() {
    let values: [Double] = [1, 1e16, -1e16]
    let barrier = StepBarrier()
    for workerID in [UInt32(1), 2, 0] {
      hold(barrier, gradient(workerID, 1, values[Int(workerID)]))
    }
    let step = barrier.average(0, count: 1)
    #expect(step.gradients == 3)
    #expect(step.values == [((values[0] + values[1]) + values[2]) / 3])
    #expect(step.values != [((values[1] + values[2]) + values[0]) / 3])
    var order: [UInt32] = []
    barrier.removeStep(0) { order.append($0.workerID) }
    #expect(order == [0, 1, 2])
    #expect(barrier.pendingSteps.isEmpty)
  }

  /// A worker's next gradient belongs to its next clock; a retry of the one
  /// waiting is found, and the rows waiting are counted.
  @Test func eachWorkerPushesIntoItsNextClock() {
    let barrier = StepBarrier()
    hold(barrier, gradient(0, 1, 1))
    hold(barrier, gradient(0, 2, 2))
    #expect(barrier.clock(of: 0, version: 0) == 2)
    #expect(barrier.clock(of: 0, version: 5) == 5)
    #expect(barrier.clock(of: 1, version: 0) == 0)
    #expect(barrier.pendingPush(of: 0)?.sequence == 2)
    #expect(barrier.pendingPush(of: 1) == nil)
    #expect(barrier.pendingRows(of: 0) == 2)
    #expect(barrier.isAwaitingReply(0))
    #expect(!barrier.isAwaitingReply(1))
  }

  /// With staleness 1 a worker may run one step ahead of the slowest; the
  /// second waits until the slowest catches up.
  @Test func repliesWaitForTheStalenessBound() {
    let barrier = StepBarrier()
    hold(barrier, gradient(0, 1, 1))
    #expect(released(barrier, version: 0, staleness: 1, joined: [0, 1]) == [[0, 1]])
    hold(barrier, gradient(0, 2, 1))
    #expect(released(barrier, version: 0, staleness: 1, joined: [0, 1]).isEmpty)
    #expect(barrier.isAwaitingReply(0))
    hold(barrier, gradient(1, 1, 1))
    #expect(barrier.isComplete(0, joined: [0, 1], leases: nil))
    _ = barrier.average(0, count: 1)
    barrier.removeStep(0) { _ in }
    #expect(released(barrier, version: 1, staleness: 1, joined: [0, 1]) == [[0, 2], [1, 1]])
    #expect(!barrier.isAwaitingReply(0))
  }

  /// Staleness 0 is BSP: no reply before the step is done.
  @Test func stalenessZeroAnswersOnlyAfterTheStep() {
    let barrier = StepBarrier()
    hold(barrier, gradient(1, 7, 1))
    #expect(released(barrier, version: 0, staleness: 0, joined: [0, 1]).isEmpty)
    hold(barrier, gradient(0, 3, 1))
    _ = barrier.average(0, count: 1)
    barrier.removeStep(0) { _ in }
    #expect(released(barrier, version: 1, staleness: 0, joined: [0, 1]) == [[0, 3], [1, 7]])
  }

  /// With leased work a joined worker without rows and without a waiting
  /// gradient is no member: the step does not wait for it.
  @Test func withLeasedWorkOnlyHoldersAreMembers() {
    var work = LeasedWork(epochs: 1, chunkRows: 2)
    work.setRows(4)
    guard case .lease = work.grant(to: 0) else {
      Issue.record("no lease")
      return
    }
    let barrier = StepBarrier()
    hold(barrier, gradient(0, 1, 1))
    #expect(barrier.isStepMember(0, leases: work))
    #expect(!barrier.isStepMember(1, leases: work))
    #expect(barrier.isStepMember(1, leases: nil))
    #expect(barrier.isComplete(0, joined: [0, 1], leases: work))
    #expect(!barrier.isComplete(0, joined: [0, 1], leases: nil))
  }

  /// A forgotten worker's gradients stay in their steps, unless dropped (its
  /// leased rows go back to the pool); its reply is never sent.
  @Test func forgettingAWorkerKeepsOrDropsItsGradients() {
    let barrier = StepBarrier()
    hold(barrier, gradient(0, 1, 1))
    hold(barrier, gradient(1, 1, 1))
    barrier.forget(0, droppingGradients: false)
    #expect(barrier.pendingPush(of: 0) != nil)
    #expect(!barrier.isAwaitingReply(0))
    barrier.forget(1, droppingGradients: true)
    #expect(barrier.pendingPush(of: 1) == nil)
    #expect(barrier.isComplete(0, joined: [2], leases: nil) == false)
    #expect(released(barrier, version: 0, staleness: 0, joined: [1]).isEmpty)
  }
}
