import Foundation
import Testing
import WireProtocol
import ZeroMQ

/// Quarantine with real processes: a server with `--quarantine --epochs`, three
/// leased workers, and a raw ZeroMQ peer playing the coordinator that reports a
/// confirmed failed audit of worker 1.
@Suite(.serialized) struct QuarantineProcessTests {
  static let rows = 60

  @Test func aQuarantinedWorkerExitsAndTheRunFinishesAfterTheRollback() throws {
    let epochs = 60
    let data = try generateData(rows: Self.rows, seed: 5, noise: 0.2)
    let (server, endpoint) = try startServer([
      "--mode", "async", "--epochs", "\(epochs)", "--chunk-rows", "5", "--dead-after-ms", "3000",
      "--quarantine", "--snapshot-every", "20", "--stay",
    ])
    defer { server.stop() }
    let workers = try (0..<3).map { id in
      try Launched([
        "worker", "--connect", endpoint, "--data", data, "--id", "\(id)", "--heartbeat-ms", "200",
      ])
    }
    defer { for worker in workers { worker.stop() } }
    // Worker 1 must have pushes past push 5 for a rollback to undo: on a loaded
    // machine the other workers may take the first leases.
    try waitFor("300 gradients, 10 of them worker 1's", within: 60) {
      let status = try serverStatus(endpoint)
      let workerOne = (status["workers"] as? [[String: Any]])?.first { $0["id"] as? Int == 1 }
      return (status["gradients_applied"] as? Int ?? 0) >= 300
        && (workerOne?["pushes_applied"] as? Int ?? 0) >= 10
    }

    // The coordinator's confirmed verdict on worker 1's push 5 (the server does not answer it).
    let context = try Context()
    let coordinator = try Socket(context, kind: .dealer)
    try coordinator.set(.linger(milliseconds: 1000))
    try coordinator.connect(endpoint)
    try coordinator.send(
      Message(
        bytes: WireCodec.encode(
          .auditResult(
            AuditResult(
              workerID: 1, sequence: 5, passed: false, maximumRelativeError: 0.9,
              failedChecks: .replay, replayMismatches: 4, confirmed: true)))))

    #expect(try workers[1].wait(within: 60) == 4, "\(workers[1].errors.suffix(400))")
    #expect(
      workers[1].errors.contains(
        "worker 1 is quarantined: its push 5 failed the replay (4 coordinates differ), confirmed"),
      "\(workers[1].errors.suffix(400))")
    for id in [0, 2] {
      #expect(try workers[id].wait(within: 120) == 0, "\(workers[id].errors.suffix(400))")
    }
    withExtendedLifetime((context, coordinator)) {}

    let final = try serverStatus(endpoint)
    #expect(final["epoch"] as? Int == epochs)
    let quarantine = try #require(final["quarantine"] as? [String: Any])
    #expect(quarantine["enabled"] as? Bool == true)
    let listed = try #require(quarantine["quarantined"] as? [[String: Any]])
    #expect(listed.count == 1)
    #expect(listed.first?["worker"] as? Int == 1 && listed.first?["push"] as? Int == 5)
    #expect(listed.first?["checks"] as? [String] == ["replay"])
    #expect(listed.first?["replay_mismatches"] as? Int == 4)
    let rolledBackTo = try #require(listed.first?["rolled_back_to"] as? Int)
    let quarantinedAt = try #require(listed.first?["quarantined_at"] as? Int)
    #expect(rolledBackTo % 20 == 0 && rolledBackTo < quarantinedAt)
    #expect(quarantine["rollbacks"] as? Int == 1)
    let undone = try #require(quarantine["versions_rolled_back"] as? Int)
    #expect(undone == quarantinedAt - rolledBackTo)
    // Batch size 1, one row per version: every row of every epoch once in the
    // parameters, plus the rows undone and leased again.
    let applied = final["gradients_applied"] as? Int ?? 0
    #expect(applied == epochs * Self.rows + undone)
    #expect(final["version"] as? Int == applied + 1)

    let text = try runPstrain(["status", "--connect", endpoint], within: 30)
    #expect(text.output.contains("quarantine: on, 1 quarantined (worker 1); 1 rollback undid"))
    #expect(text.output.contains("quarantined worker 1: push 5 failed the replay"))
    #expect(
      server.output.contains(
        "quarantined worker 1: its push 5 failed the replay (4 coordinates differ), confirmed; rolled back from version \(quarantinedAt) to \(rolledBackTo)"
      ), "\(server.output.suffix(500))")
    #expect(try server.terminate() == 0)
  }

  /// `pstrain train --quarantine --leased`: a worker quarantined mid-run (the raw
  /// peer reports the confirmed failure to the run's server) is no failure; the
  /// run finishes with the others and its JSON names the quarantine.
  @Test func trainGoesOnWithoutAQuarantinedWorker() throws {
    let train = try Launched([
      "train", "--quarantine", "--snapshot-every", "10", "--leased", "--chunk-rows", "1",
      "--workers", "3", "--epochs", "4000", "--json",
    ])
    defer { train.stop() }
    var endpoint: String?
    try waitFor("the run's server", within: 60) {
      endpoint = train.errors.split(separator: "\n").first { $0.hasPrefix("train: server at ") }
        .map { String($0.dropFirst("train: server at ".count).prefix { $0 != "," }) }
      return endpoint != nil
    }
    // The failed push was applied at a version the run has reached (the run's
    // coordinator vouches for worker 1's pushes as it audits them; the failure is
    // of one applied after its last passed audit, or else nothing is rolled back).
    var reached = 0
    try waitFor("version 100", within: 60) {
      reached = try serverStatus(try #require(endpoint))["version"] as? Int ?? 0
      return reached >= 100
    }
    let context = try Context()
    let coordinator = try Socket(context, kind: .dealer)
    try coordinator.set(.linger(milliseconds: 1000))
    try coordinator.connect(try #require(endpoint))
    try coordinator.send(
      Message(
        bytes: WireCodec.encode(
          .auditResult(
            AuditResult(
              workerID: 1, sequence: 2, passed: false, maximumRelativeError: 0.7,
              appliedAtVersion: UInt64(reached), failedChecks: [.finiteDifferences, .replay],
              replayMismatches: 2, confirmed: true)))))
    #expect(try train.wait(within: 300) == 0, "\(train.errors.suffix(600))")
    withExtendedLifetime((context, coordinator)) {}
    let summary = try lastJSONObject(train.output)
    #expect(summary["ok"] as? Bool == true, "\(summary["problems"] ?? "")")
    let quarantined = try #require(summary["quarantined"] as? [[String: Any]])
    #expect(quarantined.count == 1 && quarantined.first?["worker"] as? Int == 1)
    #expect(quarantined.first?["checks"] as? [String] == ["finite_differences", "replay"])
    #expect(quarantined.first?["max_relative_error"] as? Double == 0.7)
    #expect(summary["rollbacks"] as? Int == 1)
    #expect(quarantined.first?["rolled_back_to"] as? Int != nil)
    #expect(summary["versions_rolled_back"] as? Int != nil)
  }
}
