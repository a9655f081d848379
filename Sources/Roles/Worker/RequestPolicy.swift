import WireProtocol

/// When a worker sends what, decided by the time alone. It resends an unanswered request
/// after the retry interval (the server applies a push at most once, so this is safe, and it
/// tells the server the worker is alive), gives up when nothing useful has come for the reply
/// timeout, leaves on a stop request and gives up leaving cleanly when the stop grace runs
/// out, sends a delayed request at its time, reports progress about once a second and says,
/// once per quiet spell, what it waits for. It has no socket and reads no clock: times are
/// milliseconds of any monotonic clock and the stop request is a value, both passed in, so
/// tests drive it without waiting. `WorkerSession` owns one and turns its decisions into
/// messages (`WorkerSession+Requests.swift`).
public struct RequestPolicy: Sendable {
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

  /// What is due at a given time, as the policy sees it.
  public enum Due: Equatable, Sendable {
    /// Nothing until this time, unless a message arrives first.
    case wait(until: UInt64)
    /// Nothing has arrived within the retry interval: send the unanswered requests again.
    case resend
    /// The delayed request's time has come: send it.
    case send(WireMessage)
    /// A stop was requested while no request is unanswered (one waits for its time): leave.
    case leave
    /// The wait has been quiet long enough to say what it waits for.
    case notice(QuietWait.Notice)
  }

  /// What a worker's loop does at a given time, apart from taking messages.
  public enum Action: Equatable, Sendable {
    /// Wait for a message until this time; one that comes first goes to the session.
    case wait(until: UInt64)
    /// Send these now.
    case send([WireMessage])
    /// Say what the worker waits for (its line, if `unsaid`).
    case notice(QuietWait.Notice)
  }

  /// A request to send later, when the server asked to be asked again.
  private struct Delayed: Sendable {
    var message: WireMessage
    var at: UInt64
  }

  /// Progress is reported at most this often while answers come.
  public static let progressMilliseconds: UInt64 = 1000
  /// The longest a delayed request waits, whatever the server asked.
  public static let longestDelayMilliseconds = 60_000

  /// The timing in force.
  public let timing: Timing
  /// The server's endpoint(s), for what the worker says.
  public let server: String
  /// The latest request sent: resent when nothing answers, named when a wait is long.
  public private(set) var outstanding: WireMessage
  /// Whether the worker has asked to leave because of a stop request.
  public private(set) var isLeavingOnStop = false
  /// When the stop grace runs out; nil until a stop is requested.
  public private(set) var stopDeadline: UInt64?
  /// The latest useful answer: the reply timeout and the quiet spell run from it.
  private var lastUseful: UInt64
  /// The latest message sent or received: the retry interval runs from it.
  private var lastActivity: UInt64
  private var lastReport: UInt64
  private var delayed: Delayed?
  private var quiet: QuietWait

  /// The policy of a worker that sent `request` (its join) to `server` at `now`.
  public init(timing: Timing, server: String, request: WireMessage, now: UInt64) {
    self.timing = timing
    self.server = server
    self.outstanding = request
    self.lastUseful = now
    self.lastActivity = now
    self.lastReport = now
    self.quiet = QuietWait(now: now)
  }

  /// Whether a stop has been requested.
  public var isStopping: Bool { stopDeadline != nil }

  /// `message` was sent at `now`: it is the request awaiting an answer.
  public mutating func sent(_ message: WireMessage, now: UInt64) {
    outstanding = message
    lastActivity = max(lastActivity, now)
  }

  /// The unanswered requests were sent again at `now`.
  public mutating func resent(now: UInt64) {
    lastActivity = max(lastActivity, now)
  }

  /// A message arrived at `now`. A `useful` one (not a late duplicate) restarts the reply
  /// timeout and the quiet spell, and supersedes a delayed request.
  public mutating func received(now: UInt64, useful: Bool) {
    lastActivity = max(lastActivity, now)
    guard useful else { return }
    lastUseful = max(lastUseful, now)
    quiet.answered(now: lastUseful)
    delayed = nil
  }

  /// Sends `message` `milliseconds` after `now` (at most `longestDelayMilliseconds`).
  public mutating func delay(_ message: WireMessage, milliseconds: Int, now: UInt64) {
    delayed = Delayed(
      message: message,
      at: now + UInt64(max(0, min(milliseconds, Self.longestDelayMilliseconds))))
  }

  /// Whether the answer taken at `now` is to be followed by a leave instead of the next
  /// request: once, when a stop has been requested (`stop`).
  public mutating func leavesOnStop(stop: Bool, now: UInt64) -> Bool {
    noteStop(stop, now: now)
    guard stop, !isLeavingOnStop else { return false }
    isLeavingOnStop = true
    return true
  }

  /// What is due at `now`; `stop` says whether a stop has been requested. Throws
  /// `.interrupted` when the stop grace has run out, and `.timedOut` when nothing useful
  /// has arrived for the reply timeout.
  public mutating func due(now: UInt64, stop: Bool) throws(RoleError) -> Due {
    noteStop(stop, now: now)
    if let stopDeadline, now >= stopDeadline { throw .interrupted }
    let timeout = lastUseful + UInt64(max(0, timing.replyTimeoutMilliseconds))
    if now >= timeout {
      throw .timedOut(
        what: "reply to \(outstanding.type) from \(server)",
        milliseconds: timing.replyTimeoutMilliseconds)
    }
    let deadline = min(timeout, stopDeadline ?? .max)
    if let pending = delayed {
      // Nothing is unanswered: no resend, and nothing to say while the request waits.
      if stop, !isLeavingOnStop {
        delayed = nil
        isLeavingOnStop = true
        return .leave
      }
      guard now >= pending.at else { return .wait(until: min(deadline, pending.at)) }
      delayed = nil
      return .send(pending.message)
    }
    let resendAt = lastActivity + UInt64(timing.retryMilliseconds)
    if now >= resendAt { return .resend }
    if quiet.isDue(now: now) {
      return .notice(
        quiet.answeredOnce
          ? .unanswered(request: "\(outstanding.type)", from: server) : .noAnswer(from: server))
    }
    return .wait(until: min(deadline, resendAt, quiet.dueAt ?? .max))
  }

  /// Whether to report progress at `now`: at most once per `progressMilliseconds`.
  public mutating func isProgressReportDue(now: UInt64) -> Bool {
    guard now >= lastReport + Self.progressMilliseconds else { return false }
    lastReport = now
    return true
  }

  /// `line` if it differs from the last line said of a wait (and records it), else nil.
  public mutating func unsaid(_ line: String) -> String? {
    quiet.unsaid(line)
  }

  private mutating func noteStop(_ stop: Bool, now: UInt64) {
    if stop, stopDeadline == nil {
      stopDeadline = now + UInt64(max(0, timing.stopGraceMilliseconds))
    }
  }
}
