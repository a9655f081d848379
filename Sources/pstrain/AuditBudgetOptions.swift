import ArgumentParser
import Roles
import WireProtocol

/// `--audit-budget F`, shared by `coordinator` and `train`: the fraction of training
/// compute the coordinator spends auditing a sample of every worker's pushes, and how it
/// combines with the periods (`--every`, `--audit-every`).
struct AuditBudgetOptions: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "Fraction of training compute to spend auditing a random sample of every worker's pushes (0 to 1; 0: no sampling, periods only).",
      discussion:
        "The coordinator measures what an audit costs against a worker's gradient and sets the probability each push is sampled with so that audits cost about this fraction. Without a period, only the sample (and one early push of each worker) is audited; with one, the periods' audits come on top of the budget."
    ))
  var auditBudget: Double = AuditBudget.defaultFraction

  func validate() throws {
    guard auditBudget.isFinite, (0...1).contains(auditBudget) else {
      throw ValidationError(
        "--audit-budget must be a fraction from 0 to 1 (0.02: 2% of training compute; 0: no sampling), got \(auditBudget)"
      )
    }
  }

  /// The period to subscribe with: `every` when given; otherwise none when sampling
  /// (`AuditSubscription.noPeriods`), and `defaultPeriod` versions with a budget of 0.
  func period(_ every: UInt64?) -> UInt64 {
    every ?? (auditBudget > 0 ? AuditSubscription.noPeriods : Self.defaultPeriod)
  }

  /// The period when the budget is 0 and none is given.
  static let defaultPeriod: UInt64 = 10

  /// The same flag, to pass on to a coordinator process.
  var arguments: [String] { ["--audit-budget", "\(auditBudget)"] }
}
