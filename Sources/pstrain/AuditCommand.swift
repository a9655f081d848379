import ArgumentParser
import Roles
import TrainingMath

/// `pstrain audit`: a one-shot gradient-consistency audit of a running cluster.
struct AuditCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "audit",
    abstract: "Audit the next gradients of every training worker, once.",
    discussion: """
      Each gradient is compared with finite differences of the loss and replayed (the same
      code at the same weights and rows; see --replay).
      Exit status: 0 when every checked gradient agrees with its finite differences and its
      replay, 1 when one disagrees, 2 when the audit could not run (no server, no workers training,
      no gradient within the time limit, or every gradient below rounding noise: a
      converged run has nothing left to audit).
      """)

  @OptionGroup var server: ConnectOptions

  @OptionGroup var workerData: AuditedDataOptions

  @OptionGroup var audit: AuditToleranceOptions

  @Option(help: "Give up collecting gradients after this many milliseconds.")
  var waitMs: Int = 10_000

  @Option(help: "Stop after this many audited gradients.")
  var maxGradients: Int = 32

  @Flag(help: "Print JSON lines instead of text.")
  var json = false

  func validate() throws {
    guard waitMs > 0 else { throw ValidationError("--wait-ms must be > 0") }
    guard maxGradients >= 1 else { throw ValidationError("--max-gradients must be >= 1") }
  }

  func run() throws {
    try runReportingErrors(code: 2) {
      let (context, connection) = try server.open()
      defer { withExtendedLifetime(context) {} }
      let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
      let workers = Set(status.workers.map(\.workerID))
      guard !workers.isEmpty else {
        throw Failure(
          message: "no workers are training at \(server.connect); nothing to audit", code: 2)
      }
      let coordinator = CoordinatorLoop(
        connection: connection, every: 1, tolerance: audit.tolerance,
        dataset: try workerData.loadData(), checks: audit.checks, replayMode: audit.replayMode)
      try coordinator.run(
        timeoutMilliseconds: waitMs,
        stopWhen: { tally in
          tally.count >= maxGradients
            || workers.isSubset(of: tally.conclusiveWorkers.union(tally.failedWorkers))
        },
        shouldStop: { ShutdownSignal.isRequested }
      ) { report in
        print(json ? report.json : report.text)
      }
      let tally = coordinator.tally
      let missing = workers.subtracting(tally.conclusiveWorkers.union(tally.failedWorkers)).sorted()
      let verdict: String
      let code: Int32
      if tally.failed > 0 {
        (verdict, code) = (
          "FAILED: gradients of worker(s) \(tally.failedWorkers.sorted()) disagree", 1
        )
      } else if tally.count - tally.inconclusive > 0 {
        (verdict, code) = ("passed", 0)
      } else if tally.count > 0 {
        // Converged: each gradient is as small as its own rounding error.
        (verdict, code) = (
          "could not run: every gradient was "
            + AuditReport.belowRoundingNoise(magnitude: tally.largestGradientBelowNoise), 2
        )
      } else {
        (verdict, code) = ("could not run: no gradient arrived within \(waitMs) ms", 2)
      }
      if json {
        print(
          "{\"type\":\"summary\",\"verdict\":\(JSON.string(verdict)),\"exit\":\(code),\"audits\":\(tally.json),\"unaudited_workers\":[\(missing.map(String.init).joined(separator: ","))]}"
        )
      } else {
        // With nothing above rounding noise there is no relative error to
        // report, and every worker's gradients were seen, if not measured.
        let measured = tally.count > tally.inconclusive
        print(
          "audit: \(verdict); \(tally.count) gradients checked"
            + (measured ? ", max relative error \(tally.maximumRelativeError)" : "")
            + (tally.replayed > 0
              ? ", \(tally.replayed) replayed (\(tally.failedReplays) differ)" : "")
            + (missing.isEmpty || !measured ? "" : "; not audited: worker(s) \(missing)"))
      }
      if code != 0 { throw ExitCode(code) }
    }
  }
}
