import ArgumentParser
import Roles
import WireProtocol

/// `pstrain status`: the server's weights, version and workers.
struct StatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status", abstract: "Show a server's weights, version, updates and workers.")

  @OptionGroup var server: ConnectOptions

  @Flag(help: "Print one JSON object.")
  var json = false

  func run() throws {
    try runReportingErrors(code: 2) {
      let (context, connection) = try server.open()
      defer { withExtendedLifetime(context) {} }
      let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
      print(json ? Self.json(status) : Self.text(status))
    }
  }

  /// The status as one JSON object.
  static func json(_ status: ServerStatus) -> String {
    let workers = status.workers.map { worker in
      "{\"id\":\(worker.workerID),\"shard\":\"\(worker.shard)\",\"pushes_applied\":\(worker.pushesApplied),\"last_sequence\":\(worker.lastSequence)}"
    }
    return "{\"mode\":\"\(status.mode)\",\"version\":\(status.version),"
      + "\"gradients_applied\":\(status.gradientsApplied),\"rejected\":\(status.rejected),"
      + "\"learning_rate\":\(JSON.number(status.learningRate)),\"model\":\(JSON.string(status.modelName)),"
      + "\"weights\":\(JSON.numbers(status.parameters.values)),"
      + "\"workers\":[\(workers.joined(separator: ","))],\"workers_left\":\(status.workersLeft),"
      + "\"audit_records_sent\":\(status.auditRecordsSent),\"epochs\":\(status.epochs),"
      + "\"epoch\":\(status.epoch),\"rows_applied_in_epoch\":\(status.rowsAppliedInEpoch),"
      + "\"dataset_rows\":\(status.datasetRows),\"workers_dead\":\(status.workersDead)}"
  }

  /// The status for people.
  static func text(_ status: ServerStatus) -> String {
    var lines = [
      "mode:      \(status.mode) (lr \(status.learningRate))",
      "model:     \(status.modelName) \(status.parameters.layout.map(\.description).joined(separator: " "))",
      "version:   \(status.version) (\(status.gradientsApplied) gradients applied, \(status.rejected) rejected)",
      "weights:   \(status.parameters.values.prefix(8).map { "\($0)" }.joined(separator: " "))"
        + (status.parameters.values.count > 8 ? " ..." : ""),
      "workers:   \(status.workers.count) joined, \(status.workersLeft) left, \(status.workersDead) presumed dead",
    ]
    if status.epochs > 0 {
      lines.append(
        "epochs:    \(min(status.epoch + 1, status.epochs)) of \(status.epochs), \(status.rowsAppliedInEpoch) of \(status.datasetRows) rows applied this epoch"
      )
    }
    for worker in status.workers {
      lines.append(
        "  worker \(worker.workerID) shard \(worker.shard): \(worker.pushesApplied) pushes applied")
    }
    return lines.joined(separator: "\n")
  }
}
