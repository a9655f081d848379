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
  static let repository = repositoryRoot

  func run(_ command: [String], environment: [String: String] = [:], seconds: Double) throws
    -> (status: Int32, output: String)
  {
    try runTool("/usr/bin/env", command, environment: environment, seconds: seconds)
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
