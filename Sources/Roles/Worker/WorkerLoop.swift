import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// Runs a `WorkerSession` over a `ServerLink`: sends what the session
/// asks for, resends it when no answer comes within the retry interval (the
/// server applies a push at most once, so this is safe, and it tells the server
/// the worker is alive), and feeds the answers back, until the session finishes.
public enum WorkerLoop {
  /// Passes messages through, timing pushes for the metrics.
  private struct MeteredLink {
    let link: any ServerLink
    let metrics: WorkerMetrics

    var endpoint: String { link.endpoint }

    func send(_ message: WireMessage) throws(RoleError) {
      metrics.sent(message)
      try link.send(message)
    }

    func receive(timeoutMilliseconds: Int, graceAfterStopMilliseconds: Int?) throws(RoleError)
      -> WireMessage?
    {
      let message = try link.receive(
        timeoutMilliseconds: timeoutMilliseconds,
        graceAfterStopMilliseconds: graceAfterStopMilliseconds)
      if let message { metrics.received(message) }
      return message
    }
  }

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
  public struct Timing: Sendable {
    /// Resend an unanswered request after this many milliseconds.
    public var retryMilliseconds: Int
    /// Give up when nothing useful arrives for this many milliseconds.
    public var replyTimeoutMilliseconds: Int
    /// After a stop signal, wait at most this long to leave cleanly.
    public var stopGraceMilliseconds: Int

    /// Timing settings.
    public init(
      retryMilliseconds: Int, replyTimeoutMilliseconds: Int, stopGraceMilliseconds: Int = 5000
    ) {
      self.retryMilliseconds = max(1, retryMilliseconds)
      self.replyTimeoutMilliseconds = replyTimeoutMilliseconds
      self.stopGraceMilliseconds = stopGraceMilliseconds
    }
  }

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
    var lastReport = MonotonicClock.milliseconds()
    func report() {
      progress(
        Progress(
          epoch: session.epoch, pushesApplied: session.pushesApplied, version: session.version,
          epochLoss: session.epochLoss))
    }
    let metrics = WorkerMetrics()
    let connection = MeteredLink(link: connection, metrics: metrics)
    var outstanding = session.start()
    var interrupted = false
    try connection.send(outstanding)
    var lastUseful = MonotonicClock.milliseconds()
    var quiet = QuietWait(now: lastUseful)
    var stopDeadline: UInt64?
    while true {
      let now = MonotonicClock.milliseconds()
      if ShutdownSignal.isRequested && stopDeadline == nil {
        stopDeadline = now + UInt64(timing.stopGraceMilliseconds)
      }
      if let deadline = stopDeadline, now >= deadline { throw .interrupted }
      if now - lastUseful >= UInt64(timing.replyTimeoutMilliseconds) {
        throw .timedOut(
          what: "reply to \(outstanding.type) from \(connection.endpoint)",
          milliseconds: timing.replyTimeoutMilliseconds)
      }
      guard
        let reply = try connection.receive(
          timeoutMilliseconds: timing.retryMilliseconds, graceAfterStopMilliseconds: nil)
      else {
        // Retry: every unanswered push of the window, or the last request.
        // This is also how the server knows the worker is alive.
        let unanswered = session.unacknowledgedPushes
        for message in unanswered.isEmpty ? [outstanding] : unanswered {
          try connection.send(message)
        }
        if quiet.isDue(now: MonotonicClock.milliseconds()) {
          let request = "\(outstanding.type)"
          let line =
            quiet.answeredOnce
            ? describeWait(request)
              ?? "waiting for the server's answer to \(request) from \(connection.endpoint)"
            : QuietWait.noAnswer(from: connection.endpoint)
          if let line = quiet.unsaid(line) { notice(line) }
        }
        continue
      }
      var step = try session.receive(reply)
      if step == .ignore { continue }
      lastUseful = MonotonicClock.milliseconds()
      quiet.answered(now: lastUseful)
      readiness?.markReady(now: lastUseful)
      if ShutdownSignal.isRequested && !interrupted, step != .finished {
        step = .send(session.leaveNow())
        interrupted = true
      }
      switch step {
      case .finished:
        report()
        if let divergence = session.divergence { throw divergence }
        if interrupted { throw .interrupted }
        return
      case .ignore:
        continue
      case .send(let message):
        outstanding = message
        try connection.send(message)
      case .sendEach(let messages):
        for message in messages { try connection.send(message) }
        if let last = messages.last { outstanding = last }
      case .sendAfter(let milliseconds, let message):
        Sleep.milliseconds(min(milliseconds, 60_000))
        outstanding = message
        try connection.send(message)
      }
      if lastUseful - lastReport >= 1000 {
        lastReport = lastUseful
        report()
      }
    }
  }
}
