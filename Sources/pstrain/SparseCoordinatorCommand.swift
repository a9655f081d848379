import Logging
import Roles
import SystemCalls
import TrainingMath
import WireProtocol

extension CoordinatorCommand {
  /// The coordinator of a sparse model: audits sampled pushes against the
  /// workers' libsvm data (`--data`) and, with `--test-data`, evaluates the
  /// model on held-out libsvm rows (test loss, accuracy and ROC AUC).
  func runSparse(
    model: SparseModelSpec, connection: any ServerLink, events: CoordinatorTensorBoard?,
    logger: Logger
  ) throws {
    guard let dataPath = workerData.data else {
      throw Failure(
        message:
          "the server holds the sparse model \(model): give the coordinator the workers' libsvm data (--data) to audit their pushes"
      )
    }
    let dataset = try loadSparseDataset(dataPath)
    let test = try testData.map { path in
      let rows = try loadSparseDataset(path)
      guard rows.count > 0 else { throw Failure(message: "test data file \(path) has no rows") }
      return rows
    }
    let readiness = Readiness(
      awaiting: "a confirmation of the audit subscription",
      staleAfterMilliseconds: Int(CoordinatorSession.leaseMilliseconds))
    let metricsEndpoint = try metrics.start(readiness: readiness, logger: logger)
    defer { metricsEndpoint?.stop() }
    let period = budget.period(every)
    let evalEvery = evalEvery ?? min(every ?? AuditBudgetOptions.defaultPeriod, .max / 10) * 10
    let coordinator = SparseCoordinatorLoop(
      connection: connection, model: model, every: period, tolerance: audit.tolerance,
      dataset: dataset, checks: audit.checks, readiness: readiness, testData: test,
      evalEvery: evalEvery,
      budget: AuditBudget(fraction: budget.auditBudget, hasReplay: audit.checks.contains(.replay)),
      seed: UInt64.random(in: 0...UInt64.max))
    try coordinator.run(
      shouldStop: { ShutdownSignal.isRequested },
      subscribed: {
        announceSubscription(
          coordinator, period: period, evalEvery: test.map { _ in evalEvery },
          heldOutRows: test?.count, logger: logger)
      },
      evaluated: { evaluation in
        events?.evaluated(evaluation)
        print(json ? evaluation.json : evaluation.text)
      },
      sampling: { _ in announceSampling(coordinator, logger: logger) },
      warned: { warning in logger.warning("\(warning)") }
    ) { report in announce(report, to: events) }
    try summarize(coordinator, logger: logger)
  }
}
