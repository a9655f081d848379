import Roles
import WireProtocol

/// The quarantine report in words and as JSON, for `status` and `train`.
enum QuarantineText {
  /// One quarantined worker as a JSON object: `worker`, `push`, `checks`
  /// (names), `max_relative_error`, `replay_mismatches`, `quarantined_at`,
  /// `rolled_back_to` (null: not rolled back).
  static func json(_ worker: QuarantinedWorker) -> String {
    var checks: [String] = []
    if worker.failedChecks.contains(.finiteDifferences) {
      checks.append("\"finite_differences\"")
    }
    if worker.failedChecks.contains(.replay) { checks.append("\"replay\"") }
    return "{\"worker\":\(worker.workerID),\"push\":\(worker.sequence),"
      + "\"checks\":[\(checks.joined(separator: ","))],"
      + "\"max_relative_error\":\(JSON.number(worker.maximumRelativeError)),"
      + "\"replay_mismatches\":\(worker.replayMismatches),"
      + "\"quarantined_at\":\(worker.quarantinedAtVersion),"
      + "\"rolled_back_to\":\(worker.rolledBackTo.map(String.init) ?? "null")}"
  }

  /// The members `"quarantined":[...],"rollbacks":N,"versions_rolled_back":N`.
  static func jsonMembers(_ report: QuarantineReport) -> String {
    "\"quarantined\":[\(report.workers.map(json).joined(separator: ","))],"
      + "\"rollbacks\":\(report.rollbacks),\"versions_rolled_back\":\(report.versionsRolledBack)"
  }

  /// The report as a JSON object: `enabled` and the members of `jsonMembers`.
  static func jsonObject(_ report: QuarantineReport) -> String {
    "{\"enabled\":\(report.enabled),\(jsonMembers(report))}"
  }

  /// "worker 3: push 812 failed the replay (4 coordinates differ) at version
  /// 900; rolled back to version 800".
  static func text(_ worker: QuarantinedWorker) -> String {
    "worker \(worker.workerID): push \(worker.sequence) failed \(worker.failureText) at version \(worker.quarantinedAtVersion); "
      + (worker.rolledBackTo.map { "rolled back to version \($0)" } ?? "not rolled back")
  }

  /// One line of the whole report: "off", "on, nobody quarantined", or who
  /// was quarantined and how much was rolled back.
  static func summary(_ report: QuarantineReport) -> String {
    guard report.enabled else { return "off" }
    guard !report.workers.isEmpty else { return "on, no worker quarantined" }
    let ids = report.workers.map { String($0.workerID) }.joined(separator: ", ")
    return
      "on, \(report.workers.count) quarantined (worker\(report.workers.count == 1 ? "" : "s") \(ids)); \(report.rollbacks) rollback\(report.rollbacks == 1 ? "" : "s") undid \(report.versionsRolledBack) versions"
  }
}
