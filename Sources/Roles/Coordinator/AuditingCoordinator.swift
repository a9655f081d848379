/// What a coordinator, dense or sparse, tells about its audits when it prints
/// its subscription, its sampling and its summary.
public protocol AuditingCoordinator: AnyObject {
  /// Totals so far.
  var tally: AuditTally { get }
  /// The sampling probability and checks, from the audits' measured costs.
  var budget: AuditBudget { get }
  /// The probability pushes are sampled with.
  var samplingProbability: Double { get }
  /// The pushes within which a worker faulty on every push is flagged with probability 0.999.
  var detectionPushes: Int? { get }
  /// Compute seconds spent auditing.
  var auditSeconds: Double { get }
  /// Each worker's pushes and audits.
  var coverage: AuditCoverage { get }
  /// The warnings given.
  var warnings: [String] { get }
}
