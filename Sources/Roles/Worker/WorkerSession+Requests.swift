import TrainingMath
import WireProtocol

/// The worker in time: the session and its `RequestPolicy` together say what to send at
/// `now` (resends, a delayed request, the leave on a stop) and when to give up, so the loop
/// only moves bytes. Times are milliseconds of any monotonic clock, passed in.
extension WorkerSession {
  /// The first message, join, sent at `now`; from then on requests are timed by `timing`,
  /// and `server` names the server in what the worker says.
  public func start(now: UInt64, timing: RequestPolicy.Timing, server: String) -> WireMessage {
    let join = start()
    requests = RequestPolicy(timing: timing, server: server, request: join, now: now)
    return join
  }

  /// Whether a stop has been requested (after `start(now:timing:server:)`).
  public var isStopping: Bool { requests?.isStopping ?? false }

  /// What to do at `now` apart from taking messages; `stop` says whether a stop has been
  /// requested. Throws `.interrupted` when the stop grace has run out and `.timedOut` when
  /// nothing useful has arrived for the reply timeout. Needs `start(now:timing:server:)`.
  public func nextAction(now: UInt64, stop: Bool) throws(RoleError) -> RequestPolicy.Action {
    switch try requests!.due(now: now, stop: stop) {
    case .wait(let until):
      return .wait(until: until)
    case .resend:
      // Every unanswered push of the window, or the last request.
      requests!.resent(now: now)
      let unanswered = unacknowledgedPushes
      return .send(unanswered.isEmpty ? [requests!.outstanding] : unanswered)
    case .send(let message):
      requests!.sent(message, now: now)
      return .send([message])
    case .leave:
      let leave = leaveNow()
      requests!.sent(leave, now: now)
      return .send([leave])
    case .notice(let notice):
      return .notice(notice)
    }
  }

  /// Feeds a message that arrived at `now` (`receive(_:)` in time) and returns what to do
  /// next. When a stop has been requested (`stop`), the first answer is followed by a leave
  /// instead of the next request. On `.sendAfter` the loop sends nothing yet: the message
  /// comes back from `nextAction(now:stop:)` at its time.
  public func receive(_ reply: WireMessage, now: UInt64, stop: Bool) throws(RoleError) -> Step {
    var step = try receive(reply)
    if case .ignore = step {
      requests!.received(now: now, useful: false)
      return step
    }
    requests!.received(now: now, useful: true)
    if step != .finished, requests!.leavesOnStop(stop: stop, now: now) {
      step = .send(leaveNow())
    }
    switch step {
    case .send(let message):
      requests!.sent(message, now: now)
    case .sendEach(let messages):
      if let last = messages.last { requests!.sent(last, now: now) }
    case .sendAfter(let milliseconds, let message):
      requests!.delay(message, milliseconds: milliseconds, now: now)
    case .ignore, .finished:
      break
    }
    return step
  }

  /// Once finished, the error the run ends with: the divergence that made the worker leave,
  /// or `.interrupted` when it left on a stop; nil when its work is done.
  public var failure: RoleError? {
    divergence ?? (requests?.isLeavingOnStop == true ? .interrupted : nil)
  }

  /// Whether to report progress at `now` (about once a second while answers come).
  public func isProgressReportDue(now: UInt64) -> Bool {
    requests!.isProgressReportDue(now: now)
  }

  /// `line` if it differs from the last line said of a wait, else nil.
  public func unsaid(_ line: String) -> String? {
    requests!.unsaid(line)
  }
}
