/// When the coordinator evaluates the model on held-out data: at the first
/// status it gets, then whenever the server's version has moved `every`
/// versions past the last evaluation, and once more at the end. The weights
/// come in a `status` reply, so the schedule says when to ask for one; the
/// version is learnt from the audit records that pass by and, when they are
/// sparse, from a status asked for every `pollMilliseconds`. No sockets and no
/// clock of its own: times are milliseconds of any monotonic clock, passed in.
public struct EvaluationSchedule: Equatable, Sendable {
  /// Without audit records to tell the version, a status is asked for this often.
  public static let pollMilliseconds: UInt64 = 1000
  /// A status request unanswered for this long is given up (a new one may go). A
  /// renewal of the audit subscription waits for the answer, so this plus the renewal
  /// period stays below the subscription's lease.
  public static let replyMilliseconds: UInt64 = 3000

  /// Evaluate every `every` versions.
  public let every: UInt64
  /// The newest version seen (in a record or a status).
  public private(set) var latestVersion: UInt64?
  /// The version of the last evaluation finished.
  public private(set) var lastEvaluated: UInt64?
  /// When the status request now unanswered was sent (nil: none is).
  public private(set) var askedAt: UInt64?
  /// When the last status request was sent.
  private var lastAsked: UInt64?
  /// Whether the weights of a status are being evaluated: no new request until done.
  public private(set) var isEvaluating = false

  /// A schedule evaluating every `every` versions (at least 1).
  public init(every: UInt64) {
    self.every = max(1, every)
  }

  /// Whether a status request is unanswered.
  public var isAwaitingReply: Bool { askedAt != nil }

  /// Whether an evaluation is due at `version`: the first, or `every` past the last.
  public func isDue(atVersion version: UInt64) -> Bool {
    guard let lastEvaluated else { return true }
    return version >= lastEvaluated &+ every
  }

  /// Whether to ask for a status at `now`: none is unanswered and none is being
  /// evaluated, and either an evaluation is due at the latest version seen or the
  /// version has not been learnt for `pollMilliseconds`.
  public func wantsStatus(now: UInt64) -> Bool {
    guard askedAt == nil, !isEvaluating else { return false }
    if let latestVersion, isDue(atVersion: latestVersion) { return true }
    guard let lastAsked else { return true }
    return now &- lastAsked >= Self.pollMilliseconds
  }

  /// Notes that a status request was sent at `now`.
  public mutating func asked(now: UInt64) {
    askedAt = now
    lastAsked = now
  }

  /// Gives up on a status request unanswered for `replyMilliseconds`.
  public mutating func expire(now: UInt64) {
    if let askedAt, now &- askedAt >= Self.replyMilliseconds { self.askedAt = nil }
  }

  /// Notes that the server has reached `version` (an audit record's applied-at version).
  public mutating func observe(version: UInt64) {
    latestVersion = max(latestVersion ?? 0, version)
  }

  /// A status at `version` arrived: whether to evaluate its weights. At the end
  /// (`final`) always, so that a run's last report is of its final weights (an
  /// evaluation of the same version may be reused); before, when due. Evaluating
  /// starts when this says yes, and lasts until `evaluated(version:)`.
  public mutating func received(statusAt version: UInt64, final: Bool = false) -> Bool {
    askedAt = nil
    observe(version: version)
    let evaluate = final || isDue(atVersion: version)
    if evaluate { isEvaluating = true }
    return evaluate
  }

  /// The evaluation of the weights at `version` is finished.
  public mutating func evaluated(version: UInt64) {
    isEvaluating = false
    lastEvaluated = version
  }
}
