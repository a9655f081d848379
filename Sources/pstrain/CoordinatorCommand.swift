import ArgumentParser
import Roles
import TrainingMath
import WireProtocol

/// `pstrain coordinator`: audits applied gradients periodically.
struct CoordinatorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "coordinator",
    abstract: "Audit the gradients the server applies, every N versions.",
    discussion: """
      Every N versions the server sends the next gradient it applies from each worker, with
      the weights and samples it was computed at. Each is compared with central finite
      differences of the loss per coordinate and along a random direction, and replayed: the
      same code recomputes it at those weights and rows, and the two must agree bit for bit
      (--replay exact), within rounding (--replay rounding, for workers on another CPU), or
      the replay is skipped (--replay off). A failure gets a second look (the replay again,
      the finite differences with a fresh direction) and is reported as confirmed only when
      that fails too. With --test-data,
      the server's weights are also evaluated on that held-out data every --eval-every
      versions and once more at the end (test loss, and accuracy for a classifier), and each
      evaluation is reported to the server, which shows the latest in `pstrain status` and
      its metrics. Runs until SIGINT or SIGTERM, then prints a summary; exits 1 if any audit
      failed.
      """)

  @OptionGroup var server: ConnectOptions

  @Option(help: "Audit every N versions.")
  var every: UInt64 = 10

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

  @Flag(help: "Print audits as JSON lines instead of text.")
  var json = false

  @OptionGroup var logging: LoggingOptions

  func validate() throws {
    guard every >= 1 else { throw ValidationError("--every must be >= 1") }
    if let evalEvery {
      guard evalEvery >= 1 else { throw ValidationError("--eval-every must be >= 1") }
      guard testData != nil else { throw ValidationError("--eval-every needs --test-data") }
    }
  }

  func run() throws {
    try runReportingErrors {
      let logger = logging.logger("coordinator")
      let dataset = try workerData.loadData()
      let (context, connection) = try server.open()
      defer { withExtendedLifetime(context) {} }
      let readiness = Readiness(
        awaiting: "a confirmation of the audit subscription",
        staleAfterMilliseconds: Int(CoordinatorSession.leaseMilliseconds))
      let metricsEndpoint = try metrics.start(readiness: readiness, logger: logger)
      defer { metricsEndpoint?.stop() }
      // Fail fast when no server answers.
      let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
      let heldOut = try testData.map { path in
        let model = try ModelCatalog.model(
          for: ModelDescriptor(name: status.modelName, layout: status.parameters.layout))
        let test = try loadDataset(path, labelColumn: workerData.labelColumn)
        guard test.count > 0 else { throw Failure(message: "test data file \(path) has no rows") }
        try checkData(test, fits: model, path: path)
        return HeldOutData(
          dataset: test, model: model, every: evalEvery ?? min(every, .max / 10) * 10)
      }
      let coordinator = CoordinatorLoop(
        connection: connection, every: every, tolerance: audit.tolerance, dataset: dataset,
        checks: audit.checks, replayMode: audit.replayMode, readiness: readiness, heldOut: heldOut)
      try coordinator.run(
        shouldStop: { ShutdownSignal.isRequested },
        subscribed: {
          if json {
            print(
              "{\"type\":\"subscribed\",\"every\":\(every),\"tolerance\":\(audit.tolerance),"
                + "\"replay\":\"\(audit.replay.rawValue)\","
                + "\"eval_every\":\(heldOut.map { String($0.every) } ?? "null")}")
          } else {
            logger.info(
              "auditing every \(every) versions, tolerance \(audit.tolerance), replay \(audit.replay.rawValue)"
            )
          }
          if let heldOut, !json {
            logger.info(
              "evaluating on \(heldOut.dataset.count) held-out rows every \(heldOut.every) versions"
            )
          }
        },
        evaluated: { evaluation in print(json ? evaluation.json : evaluation.text) }
      ) { report in
        print(json ? report.json : report.text)
      }
      let tally = coordinator.tally
      if json {
        print("{\"type\":\"summary\",\"audits\":\(tally.json)}")
      } else {
        logger.notice(
          "\(tally.count) audits, \(tally.failuresText), \(tally.inconclusive) below rounding noise, max relative error \(tally.maximumRelativeError), \(tally.replayed) replayed"
        )
      }
      if tally.failed > 0 { throw ExitCode(1) }
    }
  }
}
