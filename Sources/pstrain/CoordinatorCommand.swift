import ArgumentParser
import Foundation
import Logging
import Roles
import TrainingMath
import WireProtocol

/// `pstrain coordinator`: audits a sample of the applied gradients under a budget, and
/// periodically when asked.
struct CoordinatorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "coordinator",
    abstract: "Audit a sample of the gradients the server applies, and every N versions.",
    discussion: """
      The server sends a random sample of every worker's applied gradients (each push with \
      the probability --audit-budget buys, drawn per push, and one early push of each \
      worker), and with --every N also the next gradient of each worker every N versions, \
      with the weights and samples it was computed at. Each is replayed: the same code \
      recomputes it at those weights and rows, and the two must agree bit for bit (--replay \
      exact), within rounding (--replay rounding, for workers on another CPU), or the replay \
      is skipped (--replay off); on a share of them that keeps the finite differences within \
      half the budget, it is also compared with central finite differences of the loss per \
      coordinate and along a random direction. A failure gets a second look (the replay \
      again, the finite differences with a fresh direction) and is reported as confirmed only \
      when that fails too. The coordinator prints the sampling probability and what it \
      implies (a worker faulty on every push is flagged within N of its pushes with \
      probability 0.999), and warns when a worker goes unaudited for more than three times \
      that. With --test-data, the server's weights are also evaluated on that held-out data \
      every --eval-every versions and once more at the end (test loss, and accuracy for a \
      classifier), and each \
      evaluation is reported to the server, which shows the latest in `pstrain status` and \
      its metrics. For a sparse model (sparse-logreg, fm:K; the server's model says which), \
      --data and --test-data are libsvm files: each audited push is joined from every server \
      shard's part and replayed bit for bit at the rows the server served for it (and checked \
      by finite differences over every touched coordinate), and an evaluation pulls the rows \
      of every key the test rows touch and adds the ROC AUC (test_auc). Runs until SIGINT or \
      SIGTERM, then prints a summary; exits 1 if any audit failed.
      """)

  @OptionGroup var server: ConnectOptions

  @Option(
    help:
      "Also audit each worker's next push every N versions (default: none, or 10 with --audit-budget 0); on top of the budget."
  )
  var every: UInt64?

  @OptionGroup var budget: AuditBudgetOptions

  @OptionGroup var workerData: AuditedDataOptions

  @Option(
    help:
      "Held-out data to evaluate the server's weights on (same columns as --data; the workers must not train on it)."
  )
  var testData: String?

  @Option(help: "With --test-data: evaluate every N versions (default: 10 × --every).")
  var evalEvery: UInt64?

  @OptionGroup var audit: AuditToleranceOptions

  @OptionGroup var metrics: MetricsOptions

  @OptionGroup var tensorBoard: TensorBoardOptions

  @Flag(help: "Print audits as JSON lines instead of text.")
  var json = false

  @OptionGroup var logging: LoggingOptions

  func validate() throws {
    if let every { guard every >= 1 else { throw ValidationError("--every must be >= 1") } }
    if let evalEvery {
      guard evalEvery >= 1 else { throw ValidationError("--eval-every must be >= 1") }
      guard testData != nil else { throw ValidationError("--eval-every needs --test-data") }
    }
  }

  func run() throws {
    try runReportingErrors {
      let logger = logging.logger("coordinator")
      let events = try tensorBoard.open(run: TensorBoardOptions.coordinatorRun, logger: logger)
        .map(CoordinatorTensorBoard.init)
      defer { events?.close() }
      let (context, connection) = try server.open()
      defer { withExtendedLifetime(context) {} }
      // Fail fast when no server answers; its model says which coordinator this is.
      let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
      if let model = try SparseModelSpec(wireName: status.modelName) {
        return try runSparse(
          model: model, connection: connection, events: events, logger: logger)
      }
      let dataset = try workerData.loadData()
      let readiness = Readiness(
        awaiting: "a confirmation of the audit subscription",
        staleAfterMilliseconds: Int(CoordinatorSession.leaseMilliseconds))
      let metricsEndpoint = try metrics.start(readiness: readiness, logger: logger)
      defer { metricsEndpoint?.stop() }
      let heldOut = try testData.map { path in
        let model = try ModelCatalog.model(
          for: ModelDescriptor(name: status.modelName, layout: status.parameters.layout))
        let test = try loadDataset(path, labelColumn: workerData.labelColumn)
        guard test.count > 0 else { throw Failure(message: "test data file \(path) has no rows") }
        try checkData(test, fits: model, path: path)
        return HeldOutData(
          dataset: test, model: model,
          every: evalEvery ?? min(every ?? AuditBudgetOptions.defaultPeriod, .max / 10) * 10)
      }
      let period = budget.period(every)
      let coordinator = CoordinatorLoop(
        connection: connection, every: period, tolerance: audit.tolerance, dataset: dataset,
        checks: audit.checks, replayMode: audit.replayMode, readiness: readiness,
        heldOut: heldOut,
        budget: AuditBudget(
          fraction: budget.auditBudget, hasReplay: audit.checks.contains(.replay)),
        seed: UInt64.random(in: 0...UInt64.max))
      try coordinator.run(
        shouldStop: { ShutdownSignal.isRequested },
        subscribed: {
          announceSubscription(
            coordinator, period: period, evalEvery: heldOut.map(\.every),
            heldOutRows: heldOut?.dataset.count, logger: logger)
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

  /// Prints an audit's verdict (a JSON line with `--json`) and writes it to TensorBoard.
  func announce(_ report: AuditReport, to events: CoordinatorTensorBoard?) {
    events?.audited(report)
    print(json ? report.json : report.text)
  }

  /// Says the subscription is confirmed: the `subscribed` JSON line, or log lines.
  func announceSubscription(
    _ coordinator: any AuditingCoordinator, period: UInt64, evalEvery: UInt64?,
    heldOutRows: Int?, logger: Logger
  ) {
    let periodText = period == AuditSubscription.noPeriods ? "null" : "\(period)"
    if json {
      print(
        "{\"type\":\"subscribed\",\"every\":\(periodText),\"tolerance\":\(audit.tolerance),"
          + "\"replay\":\"\(audit.replay.rawValue)\","
          + "\"eval_every\":\(evalEvery.map { String($0) } ?? "null"),"
          + Self.samplingFields(coordinator) + "}")
    } else {
      if period != AuditSubscription.noPeriods {
        logger.info(
          "auditing every \(period) versions, tolerance \(audit.tolerance), replay \(audit.replay.rawValue)"
        )
      }
      logger.info("\(Self.samplingText(coordinator))")
    }
    if let heldOutRows, let evalEvery, !json {
      logger.info("evaluating on \(heldOutRows) held-out rows every \(evalEvery) versions")
    }
  }

  /// Says the sampling probability changed: a `sampling` JSON line, or a log line.
  func announceSampling(_ coordinator: any AuditingCoordinator, logger: Logger) {
    if json {
      print("{\"type\":\"sampling\"," + Self.samplingFields(coordinator) + "}")
    } else {
      logger.info("\(Self.samplingText(coordinator))")
    }
  }

  /// Prints the summary (a `summary` JSON line, or log lines); exits 1 if any audit failed.
  func summarize(_ coordinator: any AuditingCoordinator, logger: Logger) throws {
    let tally = coordinator.tally
    if json {
      print(
        "{\"type\":\"summary\",\"audits\":\(tally.json)," + Self.samplingFields(coordinator)
          + ",\"coverage\":\(coordinator.coverage.json),"
          + "\"warnings\":[\(coordinator.warnings.map(JSON.string).joined(separator: ","))]}")
    } else {
      logger.notice(
        "\(tally.count) audits, \(tally.failuresText), \(tally.inconclusive) below rounding noise, max relative error \(tally.maximumRelativeError), \(tally.replayed) replayed"
      )
      logger.notice("\(Self.samplingText(coordinator))")
      for (id, worker) in coordinator.coverage.workers.sorted(by: { $0.key < $1.key }) {
        logger.notice(
          "worker \(id): \(worker.audits) audits of \(worker.pushesWatched) pushes watched (\(worker.pushes) in all), audited rate \(JSON.number(worker.auditedRate))"
        )
      }
    }
    if tally.failed > 0 { throw ExitCode(1) }
  }

  /// `"audit_budget":F,"audit_probability":p,"detection_pushes_999":N` (null when nothing is
  /// sampled or periodic), and the costs measured: `gradient_seconds` (r, one push's
  /// gradient), `replay_seconds` (a, an audit that only replays), `finite_difference_seconds`
  /// (f; null before an audit) and `audit_cpu_seconds` (spent in all).
  static func samplingFields(_ coordinator: any AuditingCoordinator) -> String {
    "\"audit_budget\":\(JSON.number(coordinator.budget.fraction)),"
      + "\"audit_probability\":\(JSON.number(coordinator.samplingProbability)),"
      + "\"detection_pushes_999\":\(coordinator.detectionPushes.map(String.init) ?? "null"),"
      + "\"gradient_seconds\":\(coordinator.budget.gradientSeconds.map(JSON.number) ?? "null"),"
      + "\"replay_seconds\":\(coordinator.budget.replaySeconds.map(JSON.number) ?? "null"),"
      + "\"finite_difference_seconds\":\(coordinator.budget.finiteDifferenceSeconds.map(JSON.number) ?? "null"),"
      + "\"audit_cpu_seconds\":\(JSON.number(coordinator.auditSeconds))"
  }

  /// One line: the budget, the probability, and the pushes within which a worker faulty on
  /// every push is flagged with probability 0.999.
  static func samplingText(_ coordinator: any AuditingCoordinator) -> String {
    let budget = coordinator.budget.fraction
    let probability = coordinator.samplingProbability
    let sampling =
      budget > 0
      ? "audit budget \(JSON.number(budget * 100))% of training compute: each push sampled with probability \(String(format: "%.4g", probability))"
      : "audit budget 0: no sampling"
    guard let pushes = coordinator.detectionPushes else { return sampling }
    return sampling
      + "; a worker faulty on every push is flagged within \(pushes) of its pushes with probability 0.999"
  }
}
