import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// The worker's requests in time (`RequestPolicy` in `WorkerSession`): resends, the reply
/// timeout, the stop grace, delayed requests, progress and quiet-wait notices, driven with an
/// injected clock, no sockets and no waiting.
@Suite struct RequestPolicyTests {
  let server = "tcp://127.0.0.1:5555"
  let timing = RequestPolicy.Timing(
    retryMilliseconds: 100, replyTimeoutMilliseconds: 5000, stopGraceMilliseconds: 500)
  let weights = NamedTensors(layout: chain3.layout, values: ChainModel.seedWeights)

  func worker(_ source: WorkSource = .shard(.whole, epochs: 1), pipeline: Int = 1) throws
    -> WorkerSession<ChainModel>
  {
    try WorkerSession(
      workerID: 0, source: source, dataset: .seed, model: ChainModel(layers: 3),
      pipeline: pipeline)
  }

  func answer(version: UInt64 = 0, acknowledging sequence: UInt64 = 0) -> WireMessage {
    .weights(WeightsReply(version: version, acknowledgedSequence: sequence, parameters: weights))
  }

  /// Every action due at `now`, up to and with the wait that follows them.
  func actions(
    _ session: WorkerSession<ChainModel>, at now: UInt64, stop: Bool = false
  ) throws -> [RequestPolicy.Action] {
    var all: [RequestPolicy.Action] = []
    while all.count < 10 {
      let action = try session.nextAction(now: now, stop: stop)
      all.append(action)
      if case .wait = action { break }
    }
    return all
  }

  @Test func theUnansweredRequestIsResentAfterTheRetryInterval() throws {
    let session = try worker()
    let join = session.start(now: 1000, timing: timing, server: server)
    #expect(try actions(session, at: 1000) == [.wait(until: 1100)])
    #expect(try actions(session, at: 1099) == [.wait(until: 1100)])
    #expect(try actions(session, at: 1100) == [.send([join]), .wait(until: 1200)])
    // The answer's push is what is resent now, the retry interval counted from its sending.
    guard case .send(let push) = try session.receive(answer(), now: 1150, stop: false) else {
      Issue.record("expected a push")
      return
    }
    #expect(push.type == .push)
    #expect(try actions(session, at: 1249) == [.wait(until: 1250)])
    #expect(try actions(session, at: 1250) == [.send([push]), .wait(until: 1350)])
  }

  @Test func everyUnansweredPushOfTheWindowIsResent() throws {
    let session = try worker(pipeline: 2)
    _ = session.start(now: 0, timing: timing, server: server)
    guard case .sendEach(let window) = try session.receive(answer(), now: 10, stop: false) else {
      Issue.record("expected a window of pushes")
      return
    }
    #expect(window.count == 2)
    #expect(try actions(session, at: 110) == [.send(window), .wait(until: 210)])
    // One answered: only the other is resent (the epoch's rows are all pushed).
    #expect(
      try session.receive(answer(version: 1, acknowledging: 1), now: 150, stop: false)
        == .sendEach([]))
    #expect(try actions(session, at: 250) == [.send([window[1]]), .wait(until: 350)])
  }

  @Test func theReplyTimeoutCountsFromTheLastUsefulAnswerWithTheSameText() throws {
    let session = try worker()
    _ = session.start(now: 0, timing: timing, server: server)
    _ = try session.receive(answer(), now: 10, stop: false)
    // A late duplicate delays the resend but is no sign of progress.
    #expect(try session.receive(answer(acknowledging: 7), now: 4990, stop: false) == .ignore)
    #expect(try actions(session, at: 5009).last == .wait(until: 5010))
    let expected = RoleError.timedOut(what: "reply to push from \(server)", milliseconds: 5000)
    #expect(throws: expected) { try session.nextAction(now: 5010, stop: false) }
    #expect(
      "\(expected)"
        == "no reply to push from tcp://127.0.0.1:5555 within 5000 ms; is the server running and reachable at that address?"
    )
  }

  @Test func aStopLeavesAtTheNextAnswerAndEndsInterrupted() throws {
    let session = try worker(.shard(.whole, epochs: 5))
    _ = session.start(now: 0, timing: timing, server: server)
    #expect(try actions(session, at: 10, stop: true) == [.wait(until: 100)])
    #expect(session.isStopping)
    #expect(try session.receive(answer(), now: 20, stop: true) == .send(.leave(workerID: 0)))
    #expect(try session.receive(.left(workerID: 0), now: 30, stop: true) == .finished)
    #expect(session.failure == .interrupted)
  }

  @Test func theStopGraceEndsAWaitForAnAnswerThatNeverComes() throws {
    let session = try worker()
    let join = session.start(now: 0, timing: timing, server: server)
    #expect(try actions(session, at: 10, stop: true) == [.wait(until: 100)])
    // Until the grace runs out the unanswered request is resent: the answer may still come.
    #expect(try actions(session, at: 490, stop: true) == [.send([join]), .wait(until: 510)])
    #expect(throws: RoleError.interrupted) { try session.nextAction(now: 510, stop: true) }
  }

  @Test func aDelayedRequestIsSentAtItsTimeAndNotResentBefore() throws {
    let session = try worker(.leased)
    _ = session.start(now: 0, timing: timing, server: server)
    let request = WireMessage.leaseRequest(workerID: 0)
    #expect(try session.receive(answer(), now: 10, stop: false) == .send(request))
    let notYet = WireMessage.noLease(NoLease(finished: false, retryAfterMilliseconds: 250))
    #expect(
      try session.receive(notYet, now: 20, stop: false)
        == .sendAfter(milliseconds: 250, request))
    // The retry interval (100 ms) passes, but nothing is unanswered while the request waits.
    #expect(try actions(session, at: 20) == [.wait(until: 270)])
    #expect(try actions(session, at: 269) == [.wait(until: 270)])
    #expect(try actions(session, at: 270) == [.send([request]), .wait(until: 370)])
  }

  @Test func aDelayedRequestGivesWayToAStopAndToTheNextAnswer() throws {
    let stopped = try worker(.leased)
    _ = stopped.start(now: 0, timing: timing, server: server)
    let notYet = WireMessage.noLease(NoLease(finished: false, retryAfterMilliseconds: 250))
    _ = try stopped.receive(answer(), now: 10, stop: false)
    _ = try stopped.receive(notYet, now: 20, stop: false)
    #expect(
      try actions(stopped, at: 100, stop: true)
        == [.send([.leave(workerID: 0)]), .wait(until: 200)])
    #expect(try stopped.receive(.left(workerID: 0), now: 110, stop: true) == .finished)
    #expect(stopped.failure == .interrupted)

    // The server forgot the worker meanwhile: it rejoins, and the old request is dropped.
    let forgotten = try worker(.leased)
    let join = forgotten.start(now: 0, timing: timing, server: server)
    _ = try forgotten.receive(answer(), now: 10, stop: false)
    _ = try forgotten.receive(notYet, now: 20, stop: false)
    let notJoined = WireMessage.error(ErrorReply(code: .notJoined, message: "restarted"))
    #expect(try forgotten.receive(notJoined, now: 30, stop: false) == .send(join))
    #expect(try actions(forgotten, at: 270) == [.send([join]), .wait(until: 370)])
  }

  @Test func aQuietWaitIsToldOncePerSpellNamingWhatIsAwaited() throws {
    let slow = RequestPolicy.Timing(retryMilliseconds: 1000, replyTimeoutMilliseconds: 60_000)
    let session = try worker()
    let join = session.start(now: 0, timing: slow, server: server)
    #expect(try actions(session, at: 1000) == [.send([join]), .wait(until: 2000)])
    #expect(
      try actions(session, at: 2000)
        == [.send([join]), .notice(.noAnswer(from: server)), .wait(until: 3000)])
    #expect(try actions(session, at: 3000) == [.send([join]), .wait(until: 4000)])
    // Once answered, a new spell names the unanswered request.
    guard case .send(let push) = try session.receive(answer(), now: 3500, stop: false) else {
      Issue.record("expected a push")
      return
    }
    #expect(try actions(session, at: 4500) == [.send([push]), .wait(until: 5500)])
    #expect(
      try actions(session, at: 5500)
        == [
          .send([push]), .notice(.unanswered(request: "push", from: server)),
          .wait(until: 6500),
        ])
    // A line already said is not said again.
    #expect(session.unsaid("waiting for 1 more worker") == "waiting for 1 more worker")
    #expect(session.unsaid("waiting for 1 more worker") == nil)
  }

  @Test func aQuietNoticeSaysWhatTheDescriptionSaysOrElseThatTheAnswerIsAwaited() {
    let unanswered = QuietWait.Notice.unanswered(request: "push", from: server)
    #expect(
      unanswered.line(describedBy: { _ in nil })
        == "waiting for the server's answer to push from tcp://127.0.0.1:5555")
    #expect(unanswered.line(describedBy: { "peers for \($0)" }) == "peers for push")
    #expect(
      QuietWait.Notice.noAnswer(from: server).line(describedBy: { _ in "unused" })
        == QuietWait.noAnswer(from: server))
  }

  @Test func progressIsReportedAboutOnceASecond() throws {
    let session = try worker()
    _ = session.start(now: 0, timing: timing, server: server)
    #expect(!session.isProgressReportDue(now: 999))
    #expect(session.isProgressReportDue(now: 1000))
    #expect(!session.isProgressReportDue(now: 1999))
    #expect(session.isProgressReportDue(now: 2000))
  }
}
