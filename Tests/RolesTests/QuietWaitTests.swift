import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// Issue 9 item 8: a wait says what it waits for after 2 s, once.
struct QuietWaitTests {
  func due(_ wait: inout QuietWait, _ now: UInt64) -> Bool { wait.isDue(now: now) }
  func unsaid(_ wait: inout QuietWait, _ line: String) -> String? { wait.unsaid(line) }

  @Test func aWaitIsDueOnceAfterTwoSeconds() {
    var wait = QuietWait(now: 1000)
    #expect(due(&wait, 1000) == false)
    #expect(due(&wait, 2999) == false)
    #expect(due(&wait, 3000))
    #expect(due(&wait, 3001) == false)  // once per quiet spell
    #expect(due(&wait, 60_000) == false)
  }

  @Test func anAnswerStartsANewSpell() {
    var wait = QuietWait(now: 0)
    #expect(!wait.answeredOnce)
    #expect(due(&wait, 2500))
    wait.answered(now: 3000)
    #expect(wait.answeredOnce)
    #expect(due(&wait, 4999) == false)
    #expect(due(&wait, 5000))
  }

  @Test func aLineIsSaidOnceEvenOverManySpells() {
    var wait = QuietWait(now: 0)
    #expect(unsaid(&wait, "waiting for 1 more worker") == "waiting for 1 more worker")
    #expect(unsaid(&wait, "waiting for 1 more worker") == nil)
    #expect(unsaid(&wait, "other") == "other")
  }

  @Test func aClockGoingBackIsNotAWait() {
    var wait = QuietWait(now: 5000)
    #expect(due(&wait, 10) == false)
  }

  func status(_ mode: ConsistencyMode, required: Int, joined: Int) throws -> ServerStatus {
    ServerStatus(
      mode: mode, version: 7, gradientsApplied: 0, rejected: 0, learningRate: 0.05,
      requiredWorkers: UInt32(required), modelName: "chain",
      parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [0]),
      workers: try (0..<joined).map {
        WorkerStatus(
          workerID: UInt32($0), shard: try Shard(index: $0, count: required), pushesApplied: 0,
          lastSequence: 0)
      }, workersLeft: 0, auditRecordsSent: 0)
  }

  @Test func theLinesSayWhatIsAwaited() throws {
    #expect(
      QuietWait.awaited(by: try status(.sync, required: 2, joined: 1), request: "push")
        == "waiting for 1 more worker to join (sync, --workers 2)")
    #expect(
      QuietWait.awaited(by: try status(.ssp, required: 5, joined: 2), request: "push")
        == "waiting for 3 more workers to join (ssp, --workers 5)")
    #expect(
      QuietWait.awaited(by: try status(.sync, required: 2, joined: 2), request: "push")
        == "waiting for the other workers' gradients of step 7 (sync, 2 workers joined)")
    #expect(
      QuietWait.awaited(by: try status(.async, required: 1, joined: 1), request: "push")
        == "waiting for the server's answer to push (async, version 7)")
    #expect(
      QuietWait.noAnswer(from: "tcp://127.0.0.1:5555")
        == "no answer from tcp://127.0.0.1:5555 yet; is the server running, and does it use CURVE keys?"
    )
  }
}
