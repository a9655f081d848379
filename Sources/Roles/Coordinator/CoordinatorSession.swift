import WireProtocol

/// The coordinator's side of an audit subscription, with no sockets and no clock of its own:
/// it says when to subscribe and renew, notices the server's confirmation, ends the
/// subscription when asked and decides when the final drain is over. Times are milliseconds
/// of any monotonic clock, passed in, so tests drive it without waiting.
public struct CoordinatorSession: Sendable {
  /// Where the session is.
  public enum Phase: Equatable, Sendable {
    /// Subscribed (or asking to be), auditing what arrives.
    case auditing
    /// The end of the subscription was sent; records sent before the server acknowledged
    /// it are still audited, until the acknowledgement or `drainMilliseconds`.
    case draining(until: UInt64)
    /// Nothing more will be audited.
    case finished
  }

  /// What a received message means for the coordinator.
  public enum Event: Equatable, Sendable {
    /// Audit this record and report it.
    case audit(AuditRecord)
    /// The server confirmed the subscription for the first time.
    case confirmed
    /// The server confirmed a renewal: the subscription is live.
    case renewed
    /// Nothing to do.
    case none
  }

  /// How long the server keeps a subscription without renewal.
  public static let leaseMilliseconds: UInt32 = 6000
  /// Renewals are sent this often, so two may be lost before the lease runs out.
  public static let renewalMilliseconds = UInt64(leaseMilliseconds / 3)
  /// The longest wait for records still in flight once the subscription is ended.
  public static let drainMilliseconds: UInt64 = 3000
  /// The longest a loop should wait for a message before asking the session again.
  public static let pollMilliseconds = 100

  /// Audit every `every` versions.
  public let every: UInt64
  /// Where the session is.
  public private(set) var phase = Phase.auditing
  /// Whether the server has confirmed the subscription.
  public private(set) var isConfirmed = false
  private var lastSubscription: UInt64? = nil

  /// A session auditing every `every` versions.
  public init(every: UInt64) {
    self.every = every
  }

  /// Whether the session has ended.
  public var isFinished: Bool { phase == .finished }

  /// The messages to send at `now`: the subscription and its renewals while auditing; once
  /// `stop` is true, one message ending it, and then none. Ends the drain when it runs out.
  public mutating func messagesToSend(now: UInt64, stop: Bool) -> [WireMessage] {
    switch phase {
    case .auditing where stop:
      phase = .draining(until: now + Self.drainMilliseconds)
      return [.auditSubscribe(AuditSubscription(every: 0, leaseMilliseconds: 1))]
    case .auditing:
      if let last = lastSubscription, now - last < Self.renewalMilliseconds { return [] }
      lastSubscription = now
      return [
        .auditSubscribe(AuditSubscription(every: every, leaseMilliseconds: Self.leaseMilliseconds))
      ]
    case .draining(let until):
      if now >= until { phase = .finished }
      return []
    case .finished:
      return []
    }
  }

  /// What `message` from the server means. Records are audited in every phase but the last;
  /// the acknowledgement of the end finishes the drain; an error reply is thrown.
  public mutating func receive(_ message: WireMessage) throws(RoleError) -> Event {
    switch message {
    case .auditRecord(let record):
      return phase == .finished ? .none : .audit(record)
    case .subscription(let state):
      switch phase {
      case .auditing where !isConfirmed:
        isConfirmed = true
        return .confirmed
      case .auditing:
        return .renewed
      case .draining where state.every == 0:
        phase = .finished
        return .none
      default:
        return .none
      }
    case .error(let error):
      throw .refused(error)
    default:
      throw .unexpectedReply(expected: "audit records", got: "\(message.type)")
    }
  }
}
