import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// Runs a `WorkerSession` over a `ServerLink`: sends what the session asks for,
/// waits on the socket until the time the session names, and feeds the answers
/// back with the time they arrived, until the session finishes. When to resend,
/// give up or leave is the session's (`RequestPolicy`); this loop reads the
/// clock and the stop signal and moves bytes.
public enum WorkerLoop {
  /// Progress passed to the caller about once a second and at the end.
  public struct Progress: Sendable {
    /// Epoch being worked on, 0-based.
    public var epoch: Int
    /// Gradients applied.
    public var pushesApplied: UInt64
    /// Latest weights version received.
    public var version: UInt64
    /// Mean loss of the last full epoch.
    public var epochLoss: Double
  }

  /// Timing of a worker's requests.
  public typealias Timing = RequestPolicy.Timing

  /// Runs the session to completion. On a stop signal the worker waits for its
  /// outstanding reply (within the grace period), leaves, and throws `.interrupted`.
  /// When no answer has come for `QuietWait.defaultMilliseconds`, `notice` hears
  /// once what is awaited: no answer at all from the server, or what
  /// `describeWait` says of the unanswered request (e.g. the peers a sync step
  /// needs), or else that the server's answer is awaited. `readiness` is marked
  /// at every useful reply (the first answers the join).
  public static func run<Model: DifferentiableModel>(
    _ session: WorkerSession<Model>, connection: any ServerLink, timing: Timing,
    readiness: Readiness? = nil, notice: (String) -> Void = { _ in },
    describeWait: (String) -> String? = { _ in nil }, progress: (Progress) -> Void
  ) throws(RoleError) {
    let connection = MeteredLink(link: connection, metrics: WorkerMetrics())
    func report() {
      connection.metrics.trainLoss.record(session.drainRecentLoss())
      progress(
        Progress(
          epoch: session.epoch, pushesApplied: session.pushesApplied, version: session.version,
          epochLoss: session.epochLoss))
    }
    try connection.send(
      session.start(
        now: MonotonicClock.milliseconds(), timing: timing, server: connection.endpoint))
    while true {
      let now = MonotonicClock.milliseconds()
      switch try session.nextAction(now: now, stop: ShutdownSignal.isRequested) {
      case .send(let messages):
        for message in messages { try connection.send(message) }
      case .notice(let wait):
        if let line = session.unsaid(wait.line(describedBy: describeWait)) { notice(line) }
      case .wait(let until):
        // Until the session's time, or a message; a stop request cuts the wait once, so
        // that the session hears of it at once.
        guard
          let reply = try connection.receive(
            timeoutMilliseconds: Int(until - now),
            graceAfterStopMilliseconds: session.isStopping ? nil : 0)
        else { continue }
        let arrived = MonotonicClock.milliseconds()
        let step = try session.receive(reply, now: arrived, stop: ShutdownSignal.isRequested)
        if step == .ignore { continue }
        readiness?.markReady(now: arrived)
        switch step {
        case .finished:
          report()
          if let failure = session.failure { throw failure }
          return
        case .send(let message):
          try connection.send(message)
        case .sendEach(let messages):
          for message in messages { try connection.send(message) }
        case .sendAfter, .ignore:
          break  // the session hands the message back from `nextAction` at its time
        }
        if session.isProgressReportDue(now: arrived) { report() }
      }
    }
  }
}
