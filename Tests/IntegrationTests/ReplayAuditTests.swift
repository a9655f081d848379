import Foundation
import Testing

/// The replay through real processes: a worker flipping a low mantissa bit, which
/// the finite differences cannot see, is caught by the coordinator's replay.
@Suite(.serialized) struct ReplayAuditIntegrationTests {
  @Test func aFlippedMantissaBitIsCaughtByTheReplayOnly() throws {
    let run = try runPstrain(
      [
        "train", "--workers", "2", "--fault", "bitflip=1:5", "--fault-worker", "1", "--epochs",
        "100", "--json",
      ], within: 60)
    #expect(run.status == 1, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    let audits = try #require(summary["audits"] as? [String: Any])
    let checks = try #require(audits["failed_checks"] as? [String: Any])
    #expect((checks["replay"] as? Int ?? 0) > 0)
    #expect(checks["finite_differences"] as? Int == 0)
    #expect(audits["failed"] as? Int == checks["replay"] as? Int)
    #expect((audits["confirmed"] as? Int ?? 0) > 0)
    let problems = try #require(summary["problems"] as? [String])
    #expect(problems.contains { $0.contains("(workers [1])") }, "\(problems)")
  }

  /// `train --replay off` reaches the coordinator: the same fault goes unseen.
  @Test func withoutTheReplayTheFlipGoesUnseen() throws {
    let run = try runPstrain(
      ["train", "--fault", "bitflip=1:5", "--replay", "off", "--epochs", "100", "--json"],
      within: 60)
    #expect(run.status == 0, "\(run.errors)")
    let audits = try #require(try lastJSONObject(run.output)["audits"] as? [String: Any])
    #expect((audits["count"] as? Int ?? 0) > 0 && audits["failed"] as? Int == 0)
  }

  @Test func faultFlagsAreChecked() throws {
    let worker = try runPstrain(["train", "--workers", "2", "--fault-worker", "2"], within: 30)
    #expect(worker.status != 0)
    #expect(worker.errors.contains("--fault-worker must be 0...1"), "\(worker.errors)")
    let bit = try runPstrain(["train", "--fault", "bitflip=1:64"], within: 30)
    #expect(bit.status != 0)
    #expect(bit.errors.contains("bit B in 0...63"), "\(bit.errors)")
    let replay = try runPstrain(["coordinator", "--replay", "sometimes"], within: 30)
    #expect(replay.status != 0)
    #expect(replay.errors.contains("exact"), "\(replay.errors)")
  }
}
