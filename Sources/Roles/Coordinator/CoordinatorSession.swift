import WireProtocol

/// The coordinator's side of an audit subscription, with no sockets and no clock of its own:
/// it says when to subscribe and renew, notices the server's confirmation, ends the
/// subscription when asked and decides when the final drain is over. With an
/// `EvaluationSchedule` it also asks for the server's status when the weights are due for an
/// evaluation on held-out data, and once more after the drain; with `coveragePollMilliseconds`
/// it asks for one that often too, for the workers' push counts (`AuditCoverage`), and once
/// more before it ends the subscription. Each
/// renewal carries the current `probability` and `seed` of the sampled audits; a probability
/// that moved meaningfully is renewed at once (after `earlyRenewalMilliseconds`). One request
/// is in flight at a time (a subscription or a status), as several server shards need:
/// their answers are joined by request. Times are milliseconds of any monotonic clock,
/// passed in, so tests drive it without waiting.
public struct CoordinatorSession: Sendable {
  /// Where the session is.
  public enum Phase: Equatable, Sendable {
    /// Subscribed (or asking to be), auditing what arrives.
    case auditing
    /// The end of the subscription was sent; records sent before the server acknowledged
    /// it are still audited, until the acknowledgement or `drainMilliseconds`.
    case draining(until: UInt64)
    /// Audits are over; the final weights are asked for and evaluated (with an
    /// evaluation schedule only).
    case finalEvaluation
    /// Nothing more will be audited or evaluated.
    case finished
  }

  /// What a received message means for the coordinator.
  public enum Event: Equatable, Sendable {
    /// Audit this record and report it.
    case audit(AuditRecord)
    /// Audit this server shard's part of a sparse push (join it with the other shards' parts).
    case auditSparse(SparseAuditRecord)
    /// The server confirmed the subscription for the first time.
    case confirmed
    /// The server confirmed a renewal: the subscription is live.
    case renewed
    /// Evaluate the weights of this status on the held-out data, then call
    /// `evaluated(version:)`; `final` for the evaluation at the end.
    case evaluate(ServerStatus, final: Bool)
    /// The status asked for the workers' push counts (`coveragePollMilliseconds`).
    case coverage(ServerStatus)
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

  /// Audit every `every` versions (`AuditSubscription.noPeriods`: sampled pushes only).
  public let every: UInt64
  /// The probability of the sampled audits, sent with each subscription and renewal.
  public var probability = 0.0
  /// The seed of the sampled audits' draw, sent with each subscription and renewal.
  public var seed: UInt64 = 0
  /// How often to ask for a status for the workers' push counts (nil: never).
  public let coveragePollMilliseconds: UInt64?
  /// When the coverage status now unanswered was asked for (nil: none is).
  private var coverageAskedAt: UInt64?
  /// When a status was last asked for (for coverage or an evaluation).
  private var lastCoverage: UInt64?
  /// Whether the status asked for coverage before the end was sent.
  private var finalCoverageAsked = false
  /// Where the session is.
  public private(set) var phase = Phase.auditing
  /// Whether the server has confirmed the subscription.
  public private(set) var isConfirmed = false
  private var lastSubscription: UInt64? = nil
  /// The probability the last subscription or renewal carried.
  private var sentProbability = 0.0
  /// A probability that moved meaningfully is sent this soon after the last renewal
  /// (`AuditBudget.changedMeaningfully`), not at the next one.
  public static let earlyRenewalMilliseconds: UInt64 = 100
  /// Whether a subscription request is unanswered.
  private var awaitingSubscription = false
  /// When to evaluate on held-out data (nil: the coordinator does not).
  public private(set) var evaluation: EvaluationSchedule?

  /// A session auditing every `every` versions and, with `evaluation`, evaluating on
  /// held-out data as it says; with `coveragePollMilliseconds`, asking for a status that
  /// often for the workers' push counts.
  public init(
    every: UInt64, evaluation: EvaluationSchedule? = nil, coveragePollMilliseconds: UInt64? = nil
  ) {
    self.every = every
    self.evaluation = evaluation
    self.coveragePollMilliseconds = coveragePollMilliseconds
  }

  /// Whether the session has ended.
  public var isFinished: Bool { phase == .finished }

  /// The messages to send at `now`: the subscription and its renewals while auditing; once
  /// `stop` is true, one message ending it, and then none. Ends the drain when it runs out.
  /// With an evaluation schedule, a status request when the schedule wants one and no other
  /// request is unanswered; a renewal or the end waits for the status (at most
  /// `EvaluationSchedule.replyMilliseconds`), and after the drain one more status is asked
  /// for, for the final evaluation.
  public mutating func messagesToSend(now: UInt64, stop: Bool) -> [WireMessage] {
    evaluation?.expire(now: now)
    if let askedAt = coverageAskedAt, now &- askedAt >= EvaluationSchedule.replyMilliseconds {
      coverageAskedAt = nil
    }
    let awaitingStatus = (evaluation?.isAwaitingReply ?? false) || coverageAskedAt != nil
    switch phase {
    case .auditing where stop:
      if awaitingStatus { return [] }
      if coveragePollMilliseconds != nil && !finalCoverageAsked {
        // The workers' last pushes first: the end waits for them (at most a reply's time).
        finalCoverageAsked = true
        coverageAskedAt = now
        lastCoverage = now
        return [.statusRequest]
      }
      phase = .draining(until: now + Self.drainMilliseconds)
      return [.auditSubscribe(AuditSubscription(every: 0, leaseMilliseconds: 1))]
    case .auditing:
      if lastSubscription.map({
        now - $0 >= Self.renewalMilliseconds
          || (now - $0 >= Self.earlyRenewalMilliseconds
            && AuditBudget.changedMeaningfully(from: sentProbability, to: probability))
      }) ?? true {
        if awaitingStatus { return [] }
        lastSubscription = now
        awaitingSubscription = true
        sentProbability = probability
        return [
          .auditSubscribe(
            AuditSubscription(
              every: every, leaseMilliseconds: Self.leaseMilliseconds, probability: probability,
              seed: seed))
        ]
      }
      guard !awaitingSubscription, !awaitingStatus else { return [] }
      if evaluation?.wantsStatus(now: now) == true {
        evaluation?.asked(now: now)
        lastCoverage = now
        return [.statusRequest]
      }
      guard let poll = coveragePollMilliseconds,
        lastCoverage.map({ now &- $0 >= poll }) ?? true
      else { return [] }
      coverageAskedAt = now
      lastCoverage = now
      return [.statusRequest]
    case .draining(let until):
      if now >= until { endAudits() }
      return []
    case .finalEvaluation:
      // An evaluation still running finishes first; then one request, and the end
      // when it is answered and evaluated, or given up.
      guard let schedule = evaluation, !schedule.isEvaluating, !schedule.isAwaitingReply else {
        return []
      }
      if finalAsked {
        phase = .finished  // the final request went unanswered
        return []
      }
      finalAsked = true
      evaluation?.asked(now: now)
      return [.statusRequest]
    case .finished:
      return []
    }
  }

  /// Whether the final status request was sent.
  private var finalAsked = false

  /// Audits are over: the final evaluation next, if there is one.
  private mutating func endAudits() {
    phase = evaluation == nil ? .finished : .finalEvaluation
  }

  /// The evaluation asked for with `.evaluate` is finished: `version` is the
  /// version of the weights evaluated. After the final one, the session ends.
  public mutating func evaluated(version: UInt64) {
    evaluation?.evaluated(version: version)
    // The final request goes only when no evaluation is under way: the one that
    // finishes after it is the final one.
    if phase == .finalEvaluation && finalAsked { phase = .finished }
  }

  /// What `message` from the server means. Records are audited in every phase but the last
  /// (the final evaluation's and after); the acknowledgement of the end finishes the drain; a
  /// status answering the session's request may be due for an evaluation; an error reply is
  /// thrown.
  public mutating func receive(_ message: WireMessage) throws(RoleError) -> Event {
    switch message {
    case .auditRecord(let record):
      guard phase == .auditing || isDraining else { return .none }
      evaluation?.observe(version: record.appliedAtVersion)
      return .audit(record)
    case .sparseAuditRecord(let record):
      guard phase == .auditing || isDraining else { return .none }
      evaluation?.observe(version: record.appliedAtVersion)
      return .auditSparse(record)
    case .subscription(let state):
      awaitingSubscription = false
      switch phase {
      case .auditing where !isConfirmed:
        isConfirmed = true
        return .confirmed
      case .auditing:
        return .renewed
      case .draining where state.every == 0:
        endAudits()
        return .none
      default:
        return .none
      }
    case .status(let status) where coverageAskedAt != nil:
      coverageAskedAt = nil
      return phase == .finished ? .none : .coverage(status)
    case .status where evaluation == nil && coveragePollMilliseconds != nil:
      return .none  // an answer given up on
    case .status(let status) where evaluation != nil:
      // Only the answer to this session's request counts: a stray one, or one given up on,
      // is not evaluated.
      guard evaluation?.isAwaitingReply == true, phase != .finished else { return .none }
      let final = phase == .finalEvaluation
      guard evaluation?.received(statusAt: status.version, final: final) == true else {
        return .none
      }
      return .evaluate(status, final: final)
    case .error(let error):
      throw .refused(error)
    default:
      throw .unexpectedReply(expected: "audit records", got: "\(message.type)")
    }
  }

  private var isDraining: Bool {
    if case .draining = phase { true } else { false }
  }
}
