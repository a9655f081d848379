import WireProtocol

/// When a client has waited quietly long enough to say what it waits for: a
/// wait that says nothing looks like a hang. After `afterMilliseconds` without
/// an answer it is due, once per quiet spell; an answer starts a new spell, and
/// a line already said is not said again (a sync worker waiting on slow peers
/// every step is told once). The clock is passed in, so this is tested without
/// sockets or sleeping.
public struct QuietWait: Sendable {
  /// How long a wait stays silent before it says what it waits for.
  public static let defaultMilliseconds: UInt64 = 2000

  /// The silent part of each wait, in milliseconds.
  public let afterMilliseconds: UInt64
  /// Whether anything has answered yet: until then the server may not be there.
  public private(set) var answeredOnce = false
  private var since: UInt64
  private var dueThisSpell = true
  private var lastSaid: String?

  /// A wait starting at `now` (milliseconds of a monotonic clock).
  public init(now: UInt64, afterMilliseconds: UInt64 = defaultMilliseconds) {
    self.since = now
    self.afterMilliseconds = afterMilliseconds
  }

  /// An answer arrived at `now`: the next quiet spell starts there.
  public mutating func answered(now: UInt64) {
    since = now
    dueThisSpell = true
    answeredOnce = true
  }

  /// When this quiet spell is due to say what is awaited; nil once it has (until an answer).
  public var dueAt: UInt64? { dueThisSpell ? since + afterMilliseconds : nil }

  /// Whether to say now what is awaited: true once per quiet spell, when it
  /// has lasted `afterMilliseconds`.
  public mutating func isDue(now: UInt64) -> Bool {
    guard dueThisSpell, now >= since, now - since >= afterMilliseconds else { return false }
    dueThisSpell = false
    return true
  }

  /// `line` if it differs from the last line said (and records it), else nil.
  public mutating func unsaid(_ line: String) -> String? {
    guard line != lastSaid else { return nil }
    lastSaid = line
    return line
  }

  /// What a quiet wait is about, for its client to say.
  public enum Notice: Equatable, Sendable {
    /// Nothing has answered yet: the server at this endpoint may not be there.
    case noAnswer(from: String)
    /// The server has answered before, and this request is unanswered.
    case unanswered(request: String, from: String)

    /// The line to say: for an unanswered request, what `describe` says of it (e.g. the
    /// peers a sync step needs), else that the server's answer is awaited.
    public func line(describedBy describe: (String) -> String?) -> String {
      switch self {
      case .noAnswer(let endpoint):
        return QuietWait.noAnswer(from: endpoint)
      case .unanswered(let request, let endpoint):
        return describe(request) ?? "waiting for the server's answer to \(request) from \(endpoint)"
      }
    }
  }

  /// The wait for a server that has not answered at all.
  public static func noAnswer(from endpoint: String) -> String {
    "no answer from \(endpoint) yet; is the server running, and does it use CURVE keys?"
  }

  /// What a worker whose request is unanswered waits for, by the server's
  /// `status`: the workers a sync or ssp step needs, or the server's answer.
  public static func awaited(by status: ServerStatus, request: String) -> String {
    let joined = status.workers.count
    let required = Int(status.requiredWorkers)
    if status.mode != .async, joined < required {
      let missing = required - joined
      return
        "waiting for \(missing) more worker\(missing == 1 ? "" : "s") to join (\(status.mode), --workers \(required))"
    }
    if status.mode != .async {
      return
        "waiting for the other workers' gradients of step \(status.version) (\(status.mode), \(joined) worker\(joined == 1 ? "" : "s") joined)"
    }
    return "waiting for the server's answer to \(request) (async, version \(status.version))"
  }
}
