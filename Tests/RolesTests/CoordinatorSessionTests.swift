import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// The coordinator's subscription protocol, driven with an injected clock and no sockets.
@Suite struct CoordinatorSessionTests {
  func subscription(_ messages: [WireMessage]) -> AuditSubscription? {
    guard messages.count == 1, case .auditSubscribe(let request) = messages[0] else { return nil }
    return request
  }

  @Test func subscribesAtOnceAndRenewsEveryThirdOfTheLease() {
    var session = CoordinatorSession(every: 7)
    #expect(subscription(session.messagesToSend(now: 1000, stop: false))?.every == 7)
    #expect(session.messagesToSend(now: 1001, stop: false).isEmpty)
    let beforeRenewal = 1000 + CoordinatorSession.renewalMilliseconds - 1
    #expect(session.messagesToSend(now: beforeRenewal, stop: false).isEmpty)
    let renewal = subscription(session.messagesToSend(now: beforeRenewal + 1, stop: false))
    #expect(renewal?.every == 7)
    #expect(renewal?.leaseMilliseconds == CoordinatorSession.leaseMilliseconds)
    #expect(session.messagesToSend(now: beforeRenewal + 2, stop: false).isEmpty)
  }

  @Test func confirmationIsReportedOnceAndRenewalsAfterIt() throws {
    var session = CoordinatorSession(every: 1)
    _ = session.messagesToSend(now: 0, stop: false)
    let state = WireMessage.subscription(
      SubscriptionState(every: 1, recordsSent: 0, recordsDropped: 0))
    #expect(try session.receive(state) == .confirmed)
    #expect(session.isConfirmed)
    #expect(try session.receive(state) == .renewed)
  }

  @Test func stoppingEndsTheSubscriptionOnceAndDrainsUntilAcknowledged() throws {
    var session = CoordinatorSession(every: 1)
    _ = session.messagesToSend(now: 0, stop: false)
    let end = subscription(session.messagesToSend(now: 10, stop: true))
    #expect(end?.every == 0)
    #expect(session.phase == .draining(until: 10 + CoordinatorSession.drainMilliseconds))
    // No renewal and no second end while draining.
    #expect(session.messagesToSend(now: 20, stop: true).isEmpty)
    // A late confirmation of the old subscription does not end the drain.
    _ = try session.receive(
      .subscription(SubscriptionState(every: 1, recordsSent: 3, recordsDropped: 0)))
    #expect(!session.isFinished)
    _ = try session.receive(
      .subscription(SubscriptionState(every: 0, recordsSent: 3, recordsDropped: 0)))
    #expect(session.isFinished)
  }

  @Test func theDrainEndsWhenTheServerNeverAcknowledges() {
    var session = CoordinatorSession(every: 1)
    _ = session.messagesToSend(now: 0, stop: true)
    #expect(!session.isFinished)
    _ = session.messagesToSend(now: CoordinatorSession.drainMilliseconds - 1, stop: true)
    #expect(!session.isFinished)
    _ = session.messagesToSend(now: CoordinatorSession.drainMilliseconds, stop: true)
    #expect(session.isFinished)
  }

  @Test func errorsAndStrayMessagesAreThrown() {
    var session = CoordinatorSession(every: 1)
    #expect(throws: RoleError.self) {
      try session.receive(.error(ErrorReply(code: .malformed, message: "bad")))
    }
    #expect(throws: RoleError.self) { try session.receive(.heartbeat(workerID: 1)) }
  }

  /// The session against the real server state machine: every record sent before the
  /// server acknowledged the end is audited, and nothing after.
  @Test func recordsSentBeforeTheEndAreAuditedAgainstARealServer() throws {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    var session = CoordinatorSession(every: 1)
    var audited: [UInt64] = []
    func deliver(_ outgoing: [Outgoing]) throws {
      for item in outgoing where item.peer == peerC {
        if case .audit(let record) = try session.receive(item.message) {
          audited.append(record.sequence)
        }
      }
    }
    for message in session.messagesToSend(now: 0, stop: false) {
      try deliver(server.receive(message, from: peerC, now: 0))
    }
    #expect(session.isConfirmed)
    var version: UInt64 = 0
    for sequence in UInt64(1)...3 {
      let out = server.receive(
        push(0, sequence, at: version, [0.01, 0.01, 0.01]), from: peerA, now: sequence)
      version = weights(out, for: peerA)!.version
      try deliver(out)
    }
    for message in session.messagesToSend(now: 10, stop: true) {
      try deliver(server.receive(message, from: peerC, now: 10))
    }
    #expect(session.isFinished)
    try deliver(server.receive(push(0, 4, at: version, [0.01, 0.01, 0.01]), from: peerA, now: 11))
    #expect(audited == [1, 2, 3])
  }

  /// Renewals carry the current sampling probability and seed.
  @Test func renewalsCarryTheSamplingProbabilityAndSeed() {
    var session = CoordinatorSession(every: AuditSubscription.noPeriods)
    session.seed = 99
    session.probability = 0.01
    let first = subscription(session.messagesToSend(now: 0, stop: false))
    #expect(first?.every == AuditSubscription.noPeriods)
    #expect(first?.probability == 0.01 && first?.seed == 99)
    // A probability that moved by more than 20% goes out at once (after 100 ms)...
    session.probability = 0.02
    let early = CoordinatorSession.earlyRenewalMilliseconds
    #expect(session.messagesToSend(now: early - 1, stop: false).isEmpty)
    let renewal = subscription(session.messagesToSend(now: early, stop: false))
    #expect(renewal?.probability == 0.02 && renewal?.seed == 99)
    // ... a smaller move waits for the next renewal.
    session.probability = 0.021
    #expect(session.messagesToSend(now: 2 * early, stop: false).isEmpty)
    let next = subscription(
      session.messagesToSend(now: early + CoordinatorSession.renewalMilliseconds, stop: false))
    #expect(next?.probability == 0.021)
  }

  /// With a coverage poll the session asks for a status that often, one request at a time,
  /// and hands the answer on; a renewal waits for it.
  @Test func coveragePollsAskForAStatusOneAtATime() throws {
    var session = CoordinatorSession(every: 1, coveragePollMilliseconds: 500)
    _ = session.messagesToSend(now: 0, stop: false)
    #expect(session.messagesToSend(now: 1, stop: false).isEmpty)  // subscription unanswered
    _ = try session.receive(
      .subscription(SubscriptionState(every: 1, recordsSent: 0, recordsDropped: 0)))
    #expect(session.messagesToSend(now: 2, stop: false) == [.statusRequest])
    #expect(session.messagesToSend(now: 3, stop: false).isEmpty)
    // The renewal is due but waits for the status.
    #expect(
      session.messagesToSend(now: CoordinatorSession.renewalMilliseconds, stop: false).isEmpty)
    let status = makeServer(.async).status
    #expect(try session.receive(.status(status)) == .coverage(status))
    #expect(
      subscription(session.messagesToSend(now: CoordinatorSession.renewalMilliseconds, stop: false))
        != nil)
    let renewed = WireMessage.subscription(
      SubscriptionState(every: 1, recordsSent: 0, recordsDropped: 0))
    _ = try session.receive(renewed)
    let asked = CoordinatorSession.renewalMilliseconds + 1
    #expect(session.messagesToSend(now: asked, stop: false) == [.statusRequest])  // overdue
    #expect(try session.receive(.status(status)) == .coverage(status))
    #expect(session.messagesToSend(now: asked + 499, stop: false).isEmpty)
    #expect(session.messagesToSend(now: asked + 500, stop: false) == [.statusRequest])
    // An unanswered request is given up on: the renewal goes, then another request; a
    // stray answer is dropped.
    let givenUp = asked + 500 + EvaluationSchedule.replyMilliseconds
    #expect(session.messagesToSend(now: givenUp - 1, stop: false).isEmpty)
    #expect(subscription(session.messagesToSend(now: givenUp, stop: false)) != nil)
    _ = try session.receive(renewed)
    #expect(session.messagesToSend(now: givenUp + 1, stop: false) == [.statusRequest])
    #expect(try session.receive(.status(status)) == .coverage(status))
    #expect(try session.receive(.status(status)) == .none)
  }

  /// With a coverage poll, stopping asks for the workers' last pushes first, then ends the
  /// subscription once the answer came (or was given up on).
  @Test func stoppingAsksForTheLastPushesFirst() throws {
    var session = CoordinatorSession(every: 1, coveragePollMilliseconds: 1000)
    _ = session.messagesToSend(now: 0, stop: false)
    _ = try session.receive(
      .subscription(SubscriptionState(every: 1, recordsSent: 0, recordsDropped: 0)))
    #expect(session.messagesToSend(now: 1, stop: false) == [.statusRequest])
    let status = makeServer(.async).status
    #expect(try session.receive(.status(status)) == .coverage(status))
    #expect(session.messagesToSend(now: 2, stop: true) == [.statusRequest])
    #expect(session.messagesToSend(now: 3, stop: true).isEmpty)
    #expect(try session.receive(.status(status)) == .coverage(status))
    #expect(subscription(session.messagesToSend(now: 4, stop: true))?.every == 0)
    // Unanswered, the request holds the end back no longer than a reply's time.
    var unanswered = CoordinatorSession(every: 1, coveragePollMilliseconds: 1000)
    #expect(unanswered.messagesToSend(now: 0, stop: true) == [.statusRequest])
    let late = EvaluationSchedule.replyMilliseconds
    #expect(unanswered.messagesToSend(now: late - 1, stop: true).isEmpty)
    #expect(subscription(unanswered.messagesToSend(now: late, stop: true))?.every == 0)
  }
}
