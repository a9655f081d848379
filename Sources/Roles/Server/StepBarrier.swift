import TrainingMath
import WireProtocol

/// The sync/ssp step barrier of a `ParameterServer`: gradients wait here for
/// their step (the pushing worker's clock), a step is complete once every
/// member has contributed, its gradients are averaged summed in worker-id
/// order (so the result does not depend on arrival order), and a worker's
/// reply waits until it is no more than the staleness bound ahead of the
/// slowest member. It holds no parameters and sends nothing: the server
/// applies the averages and sends the replies it releases.
///
/// A class, so that the server's every push updates it in place (no `modify`
/// access of a large value). A step in steady state allocates nothing.
final class StepBarrier {
  /// A step (clock) and a worker: where a gradient waits.
  struct StepSlot: Hashable {
    var clock: UInt64
    var workerID: UInt32
  }
  /// Gradients waiting for their step. Flat and small (workers × (staleness + 1)),
  /// so a step's gradients are found by a scan, and a step in steady state
  /// allocates nothing.
  private(set) var pendingSteps: [StepSlot: GradientPush] = [:]
  /// Pushes of applied steps, whose storage holds the next waiting gradients:
  /// the decoded push belongs to the socket loop, which decodes the next one into it.
  private var sparePushes: [GradientPush] = []
  /// Scratch: worker ids in order, and a step's gradient sum.
  private var scratchIDs: [UInt32] = []
  private var stepSum: [Double] = []
  /// Each worker's next clock: the step its next gradient belongs to.
  private var clocks: [UInt32: UInt64] = [:]
  /// Workers whose reply waits until they are within the staleness bound, with
  /// the push sequence the reply will acknowledge.
  private var deferredReplies: [UInt32: UInt64] = [:]
  /// The version and slowest clock when `deferredReplies` was last looked
  /// through. A held reply can be released only when one of them moves, so
  /// until then only the replies deferred since (`freshlyDeferred`) are looked
  /// at: a sync step of N workers then costs O(N) look-ups per push, not a sort
  /// of every held reply (O(N log N) per push, 7 s for a step of 1,000 workers
  /// in a debug build).
  private var deferredScannedAt: (version: UInt64, slowest: UInt64)?
  private var freshlyDeferred: [UInt32] = []

  /// The step the next gradient of `workerID` belongs to when the parameters
  /// are at `version`: its next clock, never a step already done.
  func clock(of workerID: UInt32, version: UInt64) -> UInt64 {
    max(clocks[workerID] ?? version, version)
  }

  /// Whether `workerID` waits for the answer to a gradient it pushed.
  func isAwaitingReply(_ workerID: UInt32) -> Bool { deferredReplies[workerID] != nil }

  /// Keeps `push` (its gradient's values `inPlace` when read where they
  /// arrived: copied) for step `clock`; its worker's next gradient belongs to
  /// the step after, and its reply waits for `releaseReplies`.
  func hold(_ push: GradientPush, inPlace: BorrowedValues?, clock: UInt64) {
    pendingSteps.updateValue(
      keep(push, inPlace: inPlace), forKey: StepSlot(clock: clock, workerID: push.workerID))
    clocks[push.workerID] = clock + 1
    deferredReplies[push.workerID] = push.sequence
    freshlyDeferred.append(push.workerID)
  }

  /// Forgets a worker that left or was dropped. Gradients it already pushed
  /// still belong to their steps unless `droppingGradients` (leased work, whose
  /// rows go back to the pool and must not also be applied from here).
  func forget(_ workerID: UInt32, droppingGradients: Bool) {
    if droppingGradients {
      pendingSteps = pendingSteps.filter { $0.key.workerID != workerID }
    }
    clocks[workerID] = nil
    deferredReplies[workerID] = nil
  }

  /// A copy of `push` to keep (its gradient's values `inPlace` when read where
  /// they arrived), in the storage of a spare push when there is one.
  private func keep(_ push: GradientPush, inPlace: BorrowedValues?) -> GradientPush {
    guard var kept = sparePushes.popLast() else {
      guard let inPlace else { return push }
      var copy = push
      copy.gradient = NamedTensors(layout: push.gradient.layout, values: inPlace.copied())
      return copy
    }
    kept.workerID = push.workerID
    kept.sequence = push.sequence
    kept.computedAtVersion = push.computedAtVersion
    kept.rows.removeAll(keepingCapacity: true)
    kept.rows.append(contentsOf: push.rows)
    kept.gradient.layout = push.gradient.layout  // shared, and only read
    kept.gradient.values.removeAll(keepingCapacity: true)
    if let inPlace {
      inPlace.append(to: &kept.gradient.values)
    } else {
      kept.gradient.values.append(contentsOf: push.gradient.values)
    }
    return kept
  }

  /// The latest gradient of `workerID` waiting for its step.
  func pendingPush(of workerID: UInt32) -> GradientPush? {
    var latest: (clock: UInt64, push: GradientPush)?
    for (slot, push) in pendingSteps
    where slot.workerID == workerID && slot.clock >= (latest?.clock ?? 0) {
      latest = (slot.clock, push)
    }
    return latest?.push
  }

  /// The rows of the gradients of `workerID` waiting for their steps.
  func pendingRows(of workerID: UInt32) -> Int {
    var rows = 0
    for (slot, push) in pendingSteps where slot.workerID == workerID { rows += push.rows.count }
    return rows
  }

  /// Whether a step waits for `workerID`: every joined worker does, or with
  /// leased `work` every joined worker that holds rows or has a gradient waiting.
  func isStepMember(_ workerID: UInt32, leases work: LeasedWork?) -> Bool {
    guard let work else { return true }
    return work.holdsLease(workerID) || pendingPush(of: workerID) != nil
  }

  /// Whether step `clock` has a gradient and one from every member among the
  /// `joined` workers.
  func isComplete(_ clock: UInt64, joined: some Collection<UInt32>, leases work: LeasedWork?)
    -> Bool
  {
    var any = false
    for slot in pendingSteps.keys where slot.clock == clock {
      any = true
      break
    }
    guard any else { return false }
    for workerID in joined
    where isStepMember(workerID, leases: work)
      && pendingSteps[StepSlot(clock: clock, workerID: workerID)] == nil
    {
      return false
    }
    return true
  }

  /// The average of step `clock`'s gradients of `count` elements, summed in
  /// worker-id order into a kept buffer (valid until the next call), and how
  /// many gradients it averages.
  func average(_ clock: UInt64, count: Int) -> (values: [Double], gradients: Int) {
    scratchIDs.removeAll(keepingCapacity: true)
    for slot in pendingSteps.keys where slot.clock == clock { scratchIDs.append(slot.workerID) }
    scratchIDs.sort()
    if stepSum.count != count {
      stepSum = [Double](repeating: 0, count: count)
    }
    stepSum.withUnsafeMutableBufferPointer { sum in
      for index in sum.indices { sum[index] = 0 }
      for id in scratchIDs {
        pendingSteps[StepSlot(clock: clock, workerID: id)]!.gradient.values
          .withUnsafeBufferPointer { values in
            for index in sum.indices { sum[index] += values[index] }
          }
      }
      let count = Double(scratchIDs.count)
      for index in sum.indices { sum[index] /= count }
    }
    return (stepSum, scratchIDs.count)
  }

  /// Takes the gradients of step `clock`, just averaged, out of the barrier and
  /// hands each to `applied`, in worker-id order; their storage is kept for the
  /// next gradients when the model is small.
  func removeStep(_ clock: UInt64, applied: (GradientPush) -> Void) {
    for id in scratchIDs {
      let push = pendingSteps.removeValue(forKey: StepSlot(clock: clock, workerID: id))!
      applied(push)
      // Storage worth keeping only for small models: a big one is not held twice.
      if push.gradient.values.count <= WireCodec.reusableElementLimit { sparePushes.append(push) }
    }
  }

  /// Lets go of the step sum's buffer when it is too big to keep between steps.
  func releaseLargeBuffers() {
    if stepSum.count > WireCodec.reusableElementLimit { stepSum = [] }
  }

  /// Releases, in worker-id order, the reply of each waiting worker among the
  /// `joined` that is no more than `staleness` steps ahead of the slowest
  /// member when the parameters are at `version`; with staleness 0 that is
  /// exactly BSP. `release` gets the worker and the sequence to acknowledge.
  func releaseReplies(
    version: UInt64, staleness: UInt64, joined: some Collection<UInt32>, leases work: LeasedWork?,
    _ release: (_ workerID: UInt32, _ sequence: UInt64) -> Void
  ) {
    var slowest = UInt64.max
    for workerID in joined where isStepMember(workerID, leases: work) {
      slowest = min(slowest, max(clocks[workerID] ?? version, version))
    }
    if slowest == .max { slowest = version }
    scratchIDs.removeAll(keepingCapacity: true)
    if let scanned = deferredScannedAt, scanned.version == version, scanned.slowest == slowest {
      scratchIDs.append(contentsOf: freshlyDeferred)
    } else {
      for workerID in deferredReplies.keys { scratchIDs.append(workerID) }
    }
    freshlyDeferred.removeAll(keepingCapacity: true)
    deferredScannedAt = (version, slowest)
    scratchIDs.sort()
    for workerID in scratchIDs {
      guard let sequence = deferredReplies[workerID], joined.contains(workerID),
        max(clocks[workerID] ?? version, version) - slowest <= staleness
      else { continue }
      deferredReplies[workerID] = nil
      release(workerID, sequence)
    }
  }
}
