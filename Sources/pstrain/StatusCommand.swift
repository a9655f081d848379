import ArgumentParser
import Foundation
import Roles
import SystemCalls
import WireProtocol

/// `pstrain status`: the server's weights, version and workers.
struct StatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status", abstract: "Show a server's weights, version, updates and workers.")

  @OptionGroup var server: ConnectOptions

  @Flag(help: "Print one JSON object (with --watch, one per refresh).")
  var json = false

  @Flag(help: "Refresh a live table until interrupted: workers, versions, updates per second.")
  var watch = false

  @Option(help: "With --watch: milliseconds between refreshes.")
  var intervalMs: Int = 1000

  @Option(help: "With --watch: stop after this many refreshes.")
  var count: Int?

  func validate() throws {
    guard intervalMs >= 50 else { throw ValidationError("--interval-ms must be >= 50") }
    if let count, count < 1 { throw ValidationError("--count must be >= 1") }
  }

  func run() throws {
    try runReportingErrors(code: 2) {
      let (context, connection) = try server.open()
      defer { withExtendedLifetime(context) {} }
      guard watch else {
        let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
        print(json ? Self.json(status) : Self.text(status))
        return
      }
      // Redraw in place for a person; one block per refresh for pipes and logs.
      let redraw = !json && StandardStreams.outputIsTerminal
      var previous: (version: UInt64, at: UInt64)?
      var refreshes = 0
      while !ShutdownSignal.isRequested {
        let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
        let now = MonotonicClock.milliseconds()
        let rate = previous.map { last in
          Double(status.version - min(status.version, last.version))
            / max(0.001, Double(now - last.at) / 1000)
        }
        previous = (status.version, now)
        if json {
          print(Self.json(status))
        } else {
          if redraw { print("\u{1B}[H\u{1B}[2J", terminator: "") }
          print(Self.table(status, updatesPerSecond: rate, endpoint: server.connect))
        }
        refreshes += 1
        if let count, refreshes >= count { break }
        var waited = 0
        while waited < intervalMs && !ShutdownSignal.isRequested {
          Sleep.milliseconds(50)
          waited += 50
        }
      }
    }
  }

  /// The live table of `--watch`.
  static func table(_ status: ServerStatus, updatesPerSecond: Double?, endpoint: String) -> String {
    var lines = [
      "pstrain status  \(endpoint)",
      "mode \(status.mode)\(status.mode == .ssp ? " (staleness \(status.staleness))" : "")  version \(status.version)  "
        + "updates/s \(updatesPerSecond.map { String(format: "%.1f", $0) } ?? "-")  "
        + "gradients \(status.gradientsApplied)  rejected \(status.rejected)  lr \(status.currentLearningRate)",
      "workers \(status.workers.count) joined, \(status.workersLeft) left, \(status.workersDead) dead  "
        + lastAuditText(status)
        + (status.epochs > 0
          ? "  epoch \(epochProgress(status.epoch, of: status.epochs)) (\(status.rowsAppliedInEpoch)/\(status.datasetRows) rows)"
          : ""),
    ]
    if let checkpoints = status.checkpoints { lines.append(checkpointText(checkpoints)) }
    if let resume = resumeText(status) { lines.append(resume) }
    if let evaluation = status.lastEvaluation { lines.append(evaluationText(evaluation)) }
    if status.quarantine.enabled {
      lines.append("quarantine \(QuarantineText.summary(status.quarantine))")
    }
    lines += ["", "  worker       shard    pushes applied    last push    staleness"]
    for worker in status.workers {
      lines.append(
        "  "
          + String(worker.workerID).padding(toLength: 11, withPad: " ", startingAt: 0) + "  "
          + String(describing: worker.shard).padding(toLength: 7, withPad: " ", startingAt: 0)
          + "  "
          + String(worker.pushesApplied).padding(toLength: 16, withPad: " ", startingAt: 0) + "  "
          + String(worker.lastSequence).padding(toLength: 11, withPad: " ", startingAt: 0) + "  "
          + String(worker.lastStaleness))
    }
    if status.workers.isEmpty { lines.append("  (no workers joined)") }
    return lines.joined(separator: "\n") + "\n"
  }

  /// The status as one JSON object.
  static func json(_ status: ServerStatus) -> String {
    let workers = status.workers.map { worker in
      "{\"id\":\(worker.workerID),\"shard\":\"\(worker.shard)\",\"pushes_applied\":\(worker.pushesApplied),\"last_sequence\":\(worker.lastSequence),\"staleness\":\(worker.lastStaleness)}"
    }
    return "{\"mode\":\"\(status.mode)\",\"version\":\(status.version),"
      + "\"gradients_applied\":\(status.gradientsApplied),\"rejected\":\(status.rejected),"
      + "\"learning_rate\":\(JSON.number(status.learningRate)),\"model\":\(JSON.string(status.modelName)),"
      + "\"weights\":\(JSON.numbers(status.parameters.values)),"
      + "\"workers\":[\(workers.joined(separator: ","))],\"workers_left\":\(status.workersLeft),"
      + "\"audit_records_sent\":\(status.auditRecordsSent),\"epochs\":\(status.epochs),"
      + "\"epoch\":\(status.epoch),\"rows_applied_in_epoch\":\(status.rowsAppliedInEpoch),"
      + "\"dataset_rows\":\(status.datasetRows),\"workers_dead\":\(status.workersDead),"
      + "\"audits_reported\":\(status.auditsReported),\"audits_failed\":\(status.auditsFailed),"
      + "\"last_audit\":\(status.lastAudit.map(lastAuditJSON) ?? "null"),"
      + "\"checkpoints\":\(status.checkpoints.map(checkpointJSON) ?? "null"),"
      + "\"resume\":\(status.resume.map(resumeJSON) ?? "null"),"
      + "\"last_evaluation\":\(status.lastEvaluation.map(evaluationJSON) ?? "null"),"
      + "\"quarantine\":\(QuarantineText.jsonObject(status.quarantine)),"
      + "\"keyed_table\":\(status.keyedTable.map(keyedTableJSON) ?? "null")}"
  }

  /// A sparse model's keyed table and traffic as JSON (`bytes_per_example`: null before any push).
  static func keyedTableJSON(_ table: KeyedTableStatus) -> String {
    "{\"model\":\(JSON.string(table.modelName)),\"width\":\(table.width),"
      + "\"rows_touched\":\(table.rowsTouched),\"row_bytes\":\(table.rowBytes),"
      + "\"bytes_allocated\":\(table.bytesAllocated),\"pulls\":\(table.pulls),"
      + "\"pushes\":\(table.pushes),\"keys_pulled\":\(table.keysPulled),"
      + "\"keys_pushed\":\(table.keysPushed),\"key_cache_hits\":\(table.keyCacheHits),"
      + "\"key_cache_misses\":\(table.keyCacheMisses),\"examples\":\(table.examples),"
      + "\"bytes_received\":\(table.bytesReceived),\"bytes_sent\":\(table.bytesSent),"
      + "\"bytes_per_example\":\(bytesPerExample(table).map(JSON.number) ?? "null")}"
  }

  /// Bytes of sparse messages, both ways, per example pushed.
  static func bytesPerExample(_ table: KeyedTableStatus) -> Double? {
    table.examples == 0
      ? nil : Double(table.bytesReceived + table.bytesSent) / Double(table.examples)
  }

  /// A sparse model's keyed table, in words.
  static func keyedTableText(_ table: KeyedTableStatus) -> String {
    let megabytes = { (bytes: UInt64) in String(format: "%.1f MB", Double(bytes) / 1e6) }
    return
      "table:     \(table.rowsTouched) rows of \(table.width) (\(megabytes(table.rowBytes)) of rows, \(megabytes(table.bytesAllocated)) allocated), \(table.pulls) pulls, \(table.pushes) pushes, key cache \(table.keyCacheHits) hits / \(table.keyCacheMisses) misses"
      + (bytesPerExample(table).map { ", \(Int($0.rounded())) bytes on the wire per example" } ?? "")
  }

  /// The checkpoint report as JSON; ages in seconds, null where there is nothing.
  static func checkpointJSON(_ health: CheckpointHealth) -> String {
    func seconds(_ milliseconds: UInt64) -> String { JSON.number(Double(milliseconds) / 1000) }
    let hasError = !health.lastError.isEmpty
    return "{\"newest_durable_version\":\(health.durableVersion.map(String.init) ?? "null"),"
      + "\"newest_durable_age_seconds\":\(health.durableVersion == nil ? "null" : seconds(health.durableAgeMilliseconds)),"
      + "\"failures_total\":\(health.failures),\"consecutive_failures\":\(health.consecutiveFailures),"
      + "\"failing_for_seconds\":\(seconds(health.failingForMilliseconds)),"
      + "\"last_error\":\(hasError ? JSON.string(health.lastError) : "null"),"
      + "\"last_error_age_seconds\":\(hasError ? seconds(health.lastErrorAgeMilliseconds) : "null")}"
  }

  /// The checkpoint report in words: the newest durable checkpoint and its age,
  /// whether checkpoints are failing, and the last error.
  static func checkpointText(_ health: CheckpointHealth) -> String {
    let age = { (ms: UInt64) in CheckpointSchedule.describe(milliseconds: ms) }
    var text =
      "checkpoints: "
      + (health.durableVersion.map {
        "newest durable version \($0), written \(age(health.durableAgeMilliseconds)) ago"
      } ?? "none durable yet")
    if health.isFailing {
      text +=
        "; FAILING for \(age(health.failingForMilliseconds)) (\(health.consecutiveFailures) tries): \(health.lastError)"
    } else if !health.lastError.isEmpty {
      text +=
        "; working (\(health.failures) failed before; last error \(age(health.lastErrorAgeMilliseconds)) ago: \(health.lastError))"
    }
    return text
  }

  private static func resumeJSON(_ resume: ResumeStatus) -> String {
    let workers = resume.workers.map {
      "{\"id\":\($0.workerID),\"last_sequence\":\($0.lastSequence)}"
    }
    return "{\"checkpoint\":\(JSON.string(resume.checkpointFile)),\"version\":\(resume.version),"
      + "\"gradients_applied\":\(resume.gradientsApplied),\"job_complete\":\(resume.jobComplete),"
      + "\"rows_to_lease\":\(resume.rowsToLease),\"workers\":[\(workers.joined(separator: ","))]}"
  }

  /// What a resumed server restored and expects to be redone, in words.
  static func resumeText(_ status: ServerStatus) -> String? {
    guard let resume = status.resume else { return nil }
    let restored =
      "resumed from \(resume.checkpointFile) at version \(resume.version) (\(resume.gradientsApplied) gradients)"
    if status.epochs > 0 {
      return restored
        + (resume.jobComplete
          ? "; the job was complete" : "; \(resume.rowsToLease) rows of that epoch leased again")
    }
    let redo = resume.workers.prefix(4).map {
      "worker \($0.workerID) after push \($0.lastSequence)"
    }
    return restored
      + (redo.isEmpty
        ? ""
        : "; workers redo their pushes: \(redo.joined(separator: ", "))\(resume.workers.count > 4 ? ", ..." : "")")
  }

  private static func lastAuditJSON(_ audit: AuditResult) -> String {
    "{\"worker\":\(audit.workerID),\"sequence\":\(audit.sequence),\"passed\":\(audit.passed),"
      + "\"max_relative_error\":\(JSON.number(audit.maximumRelativeError)),"
      + "\"conclusive\":\(audit.conclusive),"
      + "\"gradient_magnitude\":\(JSON.number(audit.gradientMagnitude))}"
  }

  /// The latest audit, in words.
  static func lastAuditText(_ status: ServerStatus) -> String {
    guard let audit = status.lastAudit else { return "no audits reported" }
    let relative = "(rel err \(String(format: "%.2e", audit.maximumRelativeError)))"
    // A relative error measured in rounding noise is no figure of merit.
    let verdict =
      !audit.passed
      ? "FAILED \(relative)"
      : audit.conclusive
        ? "passed \(relative)" : AuditReport.belowRoundingNoise(magnitude: audit.gradientMagnitude)
    return
      "\(status.auditsReported) audits, \(status.auditsFailed) failed; last: worker \(audit.workerID) push \(audit.sequence) \(verdict)"
  }

  /// The latest evaluation on held-out data as JSON: `version`, `rows`, `test_loss`,
  /// `test_accuracy` (null for a regression model).
  static func evaluationJSON(_ evaluation: EvaluationReport) -> String {
    "{\"version\":\(evaluation.version),\"rows\":\(evaluation.rows),"
      + "\"test_loss\":\(JSON.number(evaluation.loss)),"
      + "\"test_accuracy\":\(evaluation.accuracy.map(JSON.number) ?? "null"),"
      + "\"test_auc\":\(evaluation.auc.map(JSON.number) ?? "null")}"
  }

  /// The latest evaluation on held-out data, in words.
  static func evaluationText(_ evaluation: EvaluationReport) -> String {
    "test:      loss \(evaluation.loss) over \(evaluation.rows) held-out rows at version \(evaluation.version)"
      + (evaluation.accuracy.map { ", accuracy \(HeldOutEvaluation.percent($0))" } ?? "")
      + (evaluation.auc.map { ", AUC \(String(format: "%.4f", $0))" } ?? "")
  }

  /// The status for people.
  static func text(_ status: ServerStatus) -> String {
    var lines = [
      "mode:      \(status.mode) (lr \(status.learningRate))",
      "model:     \(status.modelName)"
        + (status.keyedTable == nil
          ? " " + status.parameters.layout.map(\.description).joined(separator: " ") : ""),
      "version:   \(status.version) (\(status.gradientsApplied) gradients applied, \(status.rejected) rejected)",
      status.keyedTable.map(keyedTableText)
        ?? ("weights:   \(status.parameters.values.prefix(8).map { "\($0)" }.joined(separator: " "))"
          + (status.parameters.values.count > 8 ? " ..." : "")),
      "workers:   \(status.workers.count) joined, \(status.workersLeft) left, \(status.workersDead) presumed dead",
      "audits:    \(lastAuditText(status))",
      status.lastEvaluation.map(evaluationText) ?? "test:      no evaluation reported",
    ]
    if let checkpoints = status.checkpoints {
      lines.append(checkpointText(checkpoints))
    }
    if let resume = resumeText(status) { lines.append("restart:   \(resume)") }
    lines.append("quarantine: \(QuarantineText.summary(status.quarantine))")
    for worker in status.quarantine.workers {
      lines.append("  quarantined \(QuarantineText.text(worker))")
    }
    if status.epochs > 0 {
      lines.append(
        "epochs:    \(epochProgress(status.epoch, of: status.epochs)), \(status.rowsAppliedInEpoch) of \(status.datasetRows) rows applied this epoch"
      )
    }
    for worker in status.workers {
      lines.append(
        "  worker \(worker.workerID) shard \(worker.shard): \(worker.pushesApplied) pushes applied")
    }
    return lines.joined(separator: "\n")
  }
}
