import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// A status at `version` with `weights` (by default the seed chain's).
private func status(at version: UInt64, weights: [Double] = ChainModel.seedWeights) -> ServerStatus
{
  ServerStatus(
    mode: .async, version: version, gradientsApplied: version, rejected: 0, learningRate: 0.05,
    requiredWorkers: 1, modelName: "chain",
    parameters: NamedTensors(
      layout: [TensorSpec(name: "w", count: weights.count)], values: weights), workers: [],
    workersLeft: 0, auditRecordsSent: 0)
}

/// An audit record of a gradient applied at `version`.
private func record(appliedAt version: UInt64) -> WireMessage {
  let tensors = NamedTensors(layout: chain3.layout, values: ChainModel.seedWeights)
  return .auditRecord(
    AuditRecord(
      workerID: 0, sequence: version, computedAtVersion: version - 1, appliedAtVersion: version,
      modelName: "chain", weights: tensors, dataset: seedData, rows: [0], gradient: tensors))
}

private let confirmation = WireMessage.subscription(
  SubscriptionState(every: 1, recordsSent: 0, recordsDropped: 0))
private let endAcknowledged = WireMessage.subscription(
  SubscriptionState(every: 0, recordsSent: 0, recordsDropped: 0))

/// The coordinator's evaluations on held-out data: when it asks for the weights, which
/// it evaluates, and the one at the end, driven by an injected clock and versions.
@Suite struct EvaluationScheduleTests {
  @Test func theFirstStatusIsEvaluatedThenEveryNVersions() {
    var schedule = EvaluationSchedule(every: 100)
    #expect(schedule.wantsStatus(now: 0))
    schedule.asked(now: 0)
    #expect(!schedule.wantsStatus(now: 1))  // one request at a time
    let first = schedule.received(statusAt: 7)
    #expect(first)
    #expect(!schedule.wantsStatus(now: 5000))  // none while evaluating
    schedule.evaluated(version: 7)
    #expect(schedule.lastEvaluated == 7)
    #expect(!schedule.isDue(atVersion: 106))
    #expect(schedule.isDue(atVersion: 107))
    // A version learnt from an audit record asks at once when due, not before.
    schedule.observe(version: 50)
    #expect(!schedule.wantsStatus(now: 10))
    schedule.observe(version: 110)
    #expect(schedule.wantsStatus(now: 10))
    schedule.asked(now: 10)
    let due = schedule.received(statusAt: 112)
    #expect(due)
    schedule.evaluated(version: 112)
    // A status that shows too little progress is not evaluated.
    schedule.asked(now: 20)
    let tooSoon = schedule.received(statusAt: 150)
    #expect(!tooSoon)
    #expect(schedule.lastEvaluated == 112)
    #expect(schedule.latestVersion == 150)
  }

  @Test func withoutRecordsTheVersionIsPolledAndAnUnansweredRequestGivenUp() {
    var schedule = EvaluationSchedule(every: 10)
    schedule.asked(now: 1000)
    _ = schedule.received(statusAt: 0)
    schedule.evaluated(version: 0)
    #expect(!schedule.wantsStatus(now: 1000 + EvaluationSchedule.pollMilliseconds - 1))
    #expect(schedule.wantsStatus(now: 1000 + EvaluationSchedule.pollMilliseconds))
    schedule.asked(now: 3000)
    schedule.expire(now: 3000 + EvaluationSchedule.replyMilliseconds - 1)
    #expect(schedule.isAwaitingReply)
    schedule.expire(now: 3000 + EvaluationSchedule.replyMilliseconds)
    #expect(!schedule.isAwaitingReply)
    #expect(schedule.wantsStatus(now: 3000 + EvaluationSchedule.replyMilliseconds))
  }

  @Test func theFinalStatusIsAlwaysEvaluated() {
    var schedule = EvaluationSchedule(every: 100)
    schedule.asked(now: 0)
    _ = schedule.received(statusAt: 40)
    schedule.evaluated(version: 40)
    schedule.asked(now: 1)
    let final = schedule.received(statusAt: 41, final: true)
    #expect(final)  // not due, but final
    schedule.evaluated(version: 41)
    schedule.asked(now: 2)
    let finalAgain = schedule.received(statusAt: 41, final: true)
    #expect(finalAgain)  // the loop reuses the result
  }

  @Test func theSessionAsksForWeightsOnlyBetweenItsOtherRequests() throws {
    var session = CoordinatorSession(every: 1, evaluation: EvaluationSchedule(every: 10))
    // The subscription first; no status request until it is answered.
    let first = session.messagesToSend(now: 0, stop: false)
    guard case .auditSubscribe = first.first else {
      Issue.record("expected a subscription, got \(first)")
      return
    }
    #expect(first.count == 1)
    #expect(session.messagesToSend(now: 1, stop: false).isEmpty)
    #expect(try session.receive(confirmation) == .confirmed)
    #expect(session.messagesToSend(now: 2, stop: false) == [.statusRequest])
    // While the status is unanswered, the renewal waits.
    let renewalDue = CoordinatorSession.renewalMilliseconds
    #expect(session.messagesToSend(now: renewalDue, stop: false).isEmpty)
    #expect(try session.receive(.status(status(at: 0))) == .evaluate(status(at: 0), final: false))
    let renewal = session.messagesToSend(now: renewalDue + 1, stop: false)
    guard case .auditSubscribe(let request) = renewal.first else {
      Issue.record("expected a renewal, got \(renewal)")
      return
    }
    #expect(request.every == 1)
    // Evaluating, then done: the next request waits for 10 versions or the poll.
    session.evaluated(version: 0)
    #expect(try session.receive(confirmation) == .renewed)
    #expect(try session.receive(record(appliedAt: 9)) == .audit(recordBody(9)))
    // The poll (a second since the last request) learns the version: not due yet.
    #expect(session.messagesToSend(now: renewalDue + 2, stop: false) == [.statusRequest])
    #expect(try session.receive(.status(status(at: 5))) == .none)
    #expect(session.messagesToSend(now: renewalDue + 3, stop: false).isEmpty)
    // A record says the version is due: asked at once.
    _ = try session.receive(record(appliedAt: 10))
    #expect(session.messagesToSend(now: renewalDue + 4, stop: false) == [.statusRequest])
    #expect(try session.receive(.status(status(at: 12))) == .evaluate(status(at: 12), final: false))
    session.evaluated(version: 12)
    #expect(session.evaluation?.lastEvaluated == 12)
  }

  @Test func anUnansweredStatusHoldsARenewalBackNoLongerThanTheLeaseAllows() throws {
    #expect(
      CoordinatorSession.renewalMilliseconds + EvaluationSchedule.replyMilliseconds
        < UInt64(CoordinatorSession.leaseMilliseconds))
    var session = CoordinatorSession(every: 1, evaluation: EvaluationSchedule(every: 10))
    _ = session.messagesToSend(now: 0, stop: false)
    _ = try session.receive(confirmation)
    // Asked just before the renewal is due, and never answered.
    let asked = CoordinatorSession.renewalMilliseconds - 1
    _ = session.messagesToSend(now: asked, stop: false)
    #expect(session.evaluation?.isAwaitingReply == true)
    #expect(
      session.messagesToSend(now: asked + EvaluationSchedule.replyMilliseconds - 1, stop: false)
        .isEmpty)
    let renewal = session.messagesToSend(
      now: asked + EvaluationSchedule.replyMilliseconds, stop: false)
    guard case .auditSubscribe(let request) = renewal.first else {
      Issue.record("expected the renewal once the status was given up, got \(renewal)")
      return
    }
    #expect(request.every == 1)
  }

  @Test func atTheEndTheFinalWeightsAreEvaluatedAfterTheDrain() throws {
    var session = CoordinatorSession(every: 1, evaluation: EvaluationSchedule(every: 10))
    _ = session.messagesToSend(now: 0, stop: false)
    _ = try session.receive(confirmation)
    #expect(session.messagesToSend(now: 1, stop: false) == [.statusRequest])
    // Stopping with a status unanswered: the end of the subscription waits for it.
    #expect(session.messagesToSend(now: 2, stop: true).isEmpty)
    #expect(try session.receive(.status(status(at: 0))) == .evaluate(status(at: 0), final: false))
    let end = session.messagesToSend(now: 3, stop: true)
    guard case .auditSubscribe(let request) = end.first else {
      Issue.record("expected the end of the subscription, got \(end)")
      return
    }
    #expect(request.every == 0)
    // A record sent before the end is still audited; the acknowledgement ends audits.
    #expect(try session.receive(record(appliedAt: 5)) == .audit(recordBody(5)))
    _ = try session.receive(endAcknowledged)
    #expect(session.phase == .finalEvaluation)
    // The evaluation under way finishes before the final request.
    #expect(session.messagesToSend(now: 4, stop: true).isEmpty)
    session.evaluated(version: 0)
    #expect(session.messagesToSend(now: 5, stop: true) == [.statusRequest])
    #expect(session.messagesToSend(now: 6, stop: true).isEmpty)
    #expect(try session.receive(record(appliedAt: 6)) == .none)  // audits are over
    #expect(try session.receive(.status(status(at: 7))) == .evaluate(status(at: 7), final: true))
    #expect(!session.isFinished)
    session.evaluated(version: 7)
    #expect(session.isFinished)
  }

  @Test func theEndIsReportedEvenAtAVersionAlreadyEvaluated() throws {
    var session = CoordinatorSession(every: 1, evaluation: EvaluationSchedule(every: 10))
    _ = session.messagesToSend(now: 0, stop: false)
    _ = try session.receive(confirmation)
    _ = session.messagesToSend(now: 1, stop: false)
    _ = try session.receive(.status(status(at: 3)))
    session.evaluated(version: 3)
    _ = session.messagesToSend(now: 2, stop: true)
    _ = try session.receive(endAcknowledged)
    #expect(session.messagesToSend(now: 3, stop: true) == [.statusRequest])
    #expect(try session.receive(.status(status(at: 3))) == .evaluate(status(at: 3), final: true))
    session.evaluated(version: 3)
    #expect(session.isFinished)
  }

  @Test func anUnansweredFinalRequestEndsTheSessionInTime() throws {
    var session = CoordinatorSession(every: 1, evaluation: EvaluationSchedule(every: 10))
    _ = session.messagesToSend(now: 0, stop: true)  // ends at once: nothing was asked
    _ = try session.receive(endAcknowledged)
    #expect(session.messagesToSend(now: 10, stop: true) == [.statusRequest])
    #expect(
      session.messagesToSend(now: 10 + EvaluationSchedule.replyMilliseconds - 1, stop: true).isEmpty
    )
    #expect(!session.isFinished)
    _ = session.messagesToSend(now: 10 + EvaluationSchedule.replyMilliseconds, stop: true)
    #expect(session.isFinished)
    // A reply too late is not evaluated.
    #expect(try session.receive(.status(status(at: 3))) == .none)
  }

  @Test func withoutASchedulethereIsNoStatusRequestAndAStrayStatusIsAnError() throws {
    var session = CoordinatorSession(every: 1)
    _ = session.messagesToSend(now: 0, stop: false)
    _ = try session.receive(confirmation)
    #expect(session.messagesToSend(now: 1, stop: false).isEmpty)
    #expect(throws: RoleError.self) { try session.receive(.status(status(at: 0))) }
    _ = session.messagesToSend(now: 2, stop: true)
    _ = try session.receive(endAcknowledged)
    #expect(session.isFinished)
  }

  private func recordBody(_ version: UInt64) -> AuditRecord {
    guard case .auditRecord(let body) = record(appliedAt: version) else { fatalError() }
    return body
  }
}

/// A link to an in-process `ParameterServer`: what the coordinator sends is received by
/// the server at once, and the server's answers to the coordinator queue up for it.
private final class InProcessLink: ServerLink {
  let server: ParameterServer
  var endpoint: String { "in-process" }
  var quietWaitNotice: ((String) -> Void)?
  private var inbox: [WireMessage] = []
  private var now: UInt64 = 0

  init(server: ParameterServer) { self.server = server }

  /// Sends `message` to the server from `peer`; answers to the coordinator (`peerC`) queue up.
  func deliver(_ message: WireMessage, from peer: PeerID) -> [Outgoing] {
    now += 1
    let outgoing = server.receive(message, from: peer, now: now)
    for item in outgoing where item.peer == peerC { inbox.append(item.message) }
    return outgoing
  }

  func send(_ message: WireMessage) throws(RoleError) { _ = deliver(message, from: peerC) }

  func receive(timeoutMilliseconds: Int, graceAfterStopMilliseconds: Int?) throws(RoleError)
    -> WireMessage?
  {
    inbox.isEmpty ? nil : inbox.removeFirst()
  }
}

/// The coordinator's loop against an in-process server: it evaluates the first weights,
/// then every N versions, then the final ones, and the server keeps the last report.
@Suite struct CoordinatorEvaluationLoopTests {
  @Test func theLoopEvaluatesOnHeldOutDataAndReportsToTheServer() throws {
    let server = makeServer(.async)
    let link = InProcessLink(server: server)
    _ = link.deliver(join(0, of: 1), from: peerA)
    let model = AnyDifferentiableModel(ChainModel(layers: 3))
    let heldOut = Dataset(samples: [
      Sample(index: 0, x: 0.5, label: -0.5), Sample(index: 1, x: -2, label: 2),
    ])
    let loop = CoordinatorLoop(
      connection: link, every: 1, tolerance: 1e-7, dataset: .seed,
      heldOut: HeldOutData(dataset: heldOut, model: model, every: 5))
    var version: UInt64 = 0
    var sequence: UInt64 = 0
    var evaluations: [HeldOutEvaluation] = []
    try loop.run(
      shouldStop: {
        // The worker: one push per turn of the loop, 30 in all.
        guard sequence < 30 else { return true }
        sequence += 1
        let out = link.deliver(
          push(0, sequence, at: version, [0.01, -0.02, 0.01]), from: peerA)
        version = weights(out, for: peerA)?.version ?? version
        return false
      },
      evaluated: { evaluations.append($0) }, report: { _ in })
    #expect(version == 30)
    let versions = evaluations.map(\.version)
    #expect((versions.first ?? 99) < 5)  // the first status it got
    #expect(versions.last == 30)
    let periodic = versions.dropLast()
    #expect(zip(periodic, periodic.dropFirst()).allSatisfy { $1 >= $0 + 5 })
    #expect(periodic.count >= 3)
    #expect(evaluations.map(\.isFinal) == versions.indices.map { $0 == versions.count - 1 })
    // The final figures are the held-out loss at the server's final weights.
    let expected = Objective(model: model).evaluate(weights: server.parameters, dataset: heldOut)
    #expect(evaluations.last?.result == expected)
    #expect(expected.accuracy == nil)  // a regression model
    #expect(
      server.status.lastEvaluation
        == EvaluationReport(version: 30, rows: 2, loss: expected.loss, accuracy: nil))
  }
}

/// The server's side of `evaluation`: kept (the latest), shown in `status`, never answered;
/// and sent to every server shard without disturbing the answers being joined.
@Suite struct EvaluationReportTests {
  @Test func theServerKeepsTheLatestEvaluationForStatusAndAnswersNothing() {
    let server = makeServer(.async)
    #expect(server.status.lastEvaluation == nil)
    let first = EvaluationReport(version: 10, rows: 50, loss: 0.5, accuracy: 0.75)
    let second = EvaluationReport(version: 20, rows: 50, loss: 0.25, accuracy: nil)
    #expect(server.receive(.evaluation(first), from: peerC, now: 0).isEmpty)
    #expect(server.status.lastEvaluation == first)
    #expect(server.receive(.evaluation(second), from: peerC, now: 1).isEmpty)
    #expect(server.status.lastEvaluation == second)
    #expect(server.rejected == 0)
  }

  @Test func anEvaluationGoesToEveryShardAndKeepsTheAnswersCollected() throws {
    var merger = ShardMerger(slices: [
      .init(range: 0..<2, layout: [TensorSpec(name: "w", count: 2)], version: 4),
      .init(range: 2..<3, layout: [TensorSpec(name: "w", count: 1)], version: 6),
    ])
    let report = WireMessage.evaluation(
      EvaluationReport(version: 4, rows: 2, loss: 0.1, accuracy: nil))
    _ = try merger.split(.statusRequest)
    merger.accept(.status(status(at: 4, weights: [0.1, 0.2])), from: 0)
    #expect(try merger.split(report) == [report, report])
    merger.accept(.status(status(at: 6, weights: [0.3])), from: 1)
    guard case .status(let joined) = merger.next() else {
      Issue.record("the status was not joined")
      return
    }
    #expect(joined.parameters.values == [0.1, 0.2, 0.3])
  }
}
