import Foundation
import Testing

/// Whether Slurm and munge are installed and we are root (the local cluster needs all three).
let canRunSlurm: Bool = {
  getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/slurmctld")
    && FileManager.default.isExecutableFile(atPath: "/usr/sbin/slurmd")
    && FileManager.default.isExecutableFile(atPath: "/usr/sbin/munged")
}()

/// The sbatch script of deploy/slurm, run for real on a single-machine Slurm with
/// three virtual nodes.
@Suite(.serialized, .enabled(if: canRunSlurm, "needs root, slurm-wlm and munge"))
struct SlurmTests {
  static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  /// Runs `command` with `environment` added, bounded by `seconds`; returns status and output.
  func run(_ command: [String], environment: [String: String] = [:], seconds: Double) throws
    -> (status: Int32, output: String)
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = command
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let log = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-slurm-\(UUID().uuidString).log")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(50_000) }
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      throw HarnessError(
        "\(command.joined(separator: " ")) took over \(seconds) s: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")"
      )
    }
    return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
  }

  @Test func theBatchJobTrainsAndItsAuditsPass() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-slurm-\(UUID().uuidString)"
    ).path
    let cluster = Self.repository.appendingPathComponent("deploy/slurm/local-cluster.sh").path
    let script = Self.repository.appendingPathComponent("deploy/slurm/pstrain.sbatch").path
    let started = try run([cluster, "start", directory + "/cluster"], seconds: 60)
    defer { _ = try? run([cluster, "stop", directory + "/cluster"], seconds: 30) }
    try #require(started.status == 0, "\(started.output)")
    let environment = [
      "SLURM_CONF": directory + "/cluster/slurm.conf", "PSTRAIN": try pstrainBinary(),
      "PSTRAIN_RUN_DIR": directory + "/run", "PSTRAIN_EPOCHS": "300",
    ]
    let job = try run(
      ["sbatch", "--wait", "--chdir", directory, "-o", directory + "/job.out", script],
      environment: environment, seconds: 240)
    let output = (try? String(contentsOfFile: directory + "/job.out", encoding: .utf8)) ?? ""
    #expect(job.status == 0, "\(job.output)\n\(output)")
    // Two workers on their own Slurm tasks, each on its shard.
    #expect(output.contains("worker 0: done") && output.contains("worker 1: done"), "\(output)")
    let audits = try String(contentsOfFile: directory + "/run/audits.jsonl", encoding: .utf8)
    let summary = try lastJSONObject(audits)["audits"] as? [String: Any]
    #expect((summary?["count"] as? Int ?? 0) > 0)
    #expect(summary?["failed"] as? Int == 0)
    let status = try lastJSONObject(
      try String(contentsOfFile: directory + "/run/status.json", encoding: .utf8))
    let weights = try #require(status["weights"] as? [Double])
    let product = weights.reduce(1, *)
    #expect(0.5 * (product + 1) * (product + 1) < 1e-3)
  }
}
