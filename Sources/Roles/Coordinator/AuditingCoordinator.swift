import WireProtocol

/// What a coordinator, dense or sparse, tells about its audits when it prints
/// its subscription, its sampling and its summary.
public protocol AuditingCoordinator: AnyObject {
  /// Totals so far.
  var tally: AuditTally { get }
  /// The sampling probability and checks, from the audits' measured costs.
  var budget: AuditBudget { get }
  /// Audit every this many versions (`AuditSubscription.noPeriods`: sampled pushes only).
  var every: UInt64 { get }
  /// Compute seconds spent auditing.
  var auditSeconds: Double { get }
  /// Each worker's pushes and audits.
  var coverage: AuditCoverage { get }
  /// The warnings given.
  var warnings: [String] { get }
}

extension AuditingCoordinator {
  /// The probability pushes are sampled with: the budget's (0 without one).
  public var samplingProbability: Double { budget.fraction > 0 ? budget.probability : 0 }

  /// The pushes within which a worker faulty on every push is flagged with
  /// probability 0.999: from the sampling, or a period (`every` versions hold
  /// at most `every` pushes of a worker, and its next one after is audited).
  public var detectionPushes: Int? {
    let periodic =
      every == AuditSubscription.noPeriods || every == 0 ? nil : Int(exactly: every + 1)
    let sampled = AuditBudget.detectionPushes(probability: samplingProbability)
    return [periodic, sampled].compactMap { $0 }.min()
  }
}
