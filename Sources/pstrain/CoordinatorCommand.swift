import ArgumentParser
import Roles
import TrainingMath

/// `pstrain coordinator`: audits applied gradients periodically.
struct CoordinatorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "coordinator",
    abstract: "Audit the gradients the server applies, every N versions.",
    discussion: """
      Every N versions the server sends the next gradient it applies from each worker, with
      the weights and samples it was computed at. Each is compared with central finite
      differences of the loss per coordinate and along a random direction. Runs until
      SIGINT or SIGTERM, then prints a summary; exits 1 if any audit failed.
      """)

  @OptionGroup var server: ConnectOptions

  @Option(help: "Audit every N versions.")
  var every: UInt64 = 10

  @Option(
    help:
      "The workers' data file: audits read the rows they name from it (default: the tutorial's two samples)."
  )
  var data: String?

  @Option(help: "The data's label column (default: the column named label, else the last).")
  var labelColumn: String?

  @OptionGroup var audit: AuditToleranceOptions

  @OptionGroup var metrics: MetricsOptions

  @Flag(help: "Print audits as JSON lines instead of text.")
  var json = false

  @OptionGroup var logging: LoggingOptions

  func validate() throws {
    guard every >= 1 else { throw ValidationError("--every must be >= 1") }
  }

  func run() throws {
    try runReportingErrors {
      let logger = logging.logger("coordinator")
      let dataset = try loadDataset(data, labelColumn: labelColumn)
      let (context, connection) = try server.open()
      defer { withExtendedLifetime(context) {} }
      let readiness = Readiness(
        awaiting: "a confirmation of the audit subscription",
        staleAfterMilliseconds: Int(CoordinatorSession.leaseMilliseconds))
      let metricsEndpoint = try metrics.start(readiness: readiness, logger: logger)
      defer { metricsEndpoint?.stop() }
      // Fail fast when no server answers.
      _ = try connection.status(timeoutMilliseconds: server.timeoutMs)
      let coordinator = CoordinatorLoop(
        connection: connection, every: every, tolerance: audit.tolerance, dataset: dataset,
        readiness: readiness)
      try coordinator.run(
        shouldStop: { ShutdownSignal.isRequested },
        subscribed: {
          if json {
            print("{\"type\":\"subscribed\",\"every\":\(every),\"tolerance\":\(audit.tolerance)}")
          } else {
            logger.info("auditing every \(every) versions, tolerance \(audit.tolerance)")
          }
        }
      ) { report in
        print(json ? report.json : report.text)
      }
      let tally = coordinator.tally
      if json {
        print("{\"type\":\"summary\",\"audits\":\(tally.json)}")
      } else {
        logger.notice(
          "\(tally.count) audits, \(tally.failed) failed, \(tally.inconclusive) below rounding noise, max relative error \(tally.maximumRelativeError)"
        )
      }
      if tally.failed > 0 { throw ExitCode(1) }
    }
  }
}
