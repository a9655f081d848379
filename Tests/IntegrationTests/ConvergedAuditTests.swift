import Foundation
import Testing

/// A healthy cluster that has converged (issue 9 item 9): its gradients are as
/// small as their own rounding error, and `audit`, `status` and `train --plot`
/// say so instead of reading as failures.
@Suite(.serialized) struct ConvergedAuditTests {
  @Test func auditAndStatusSayTheGradientsAreBelowRoundingNoise() throws {
    let (server, endpoint) = try startServer()
    defer { server.stop() }
    // The tutorial's two samples: a chain fits them exactly.
    let worker = try Launched([
      "worker", "--connect", endpoint, "--shard", "0/1", "--epochs", "1000000",
    ])
    defer { worker.stop() }
    try waitFor("the run to converge", within: 120) {
      (try serverStatus(endpoint)["version"] as? Int ?? 0) >= 3000
    }
    let audit = try runPstrain(
      ["audit", "--connect", endpoint, "--max-gradients", "4", "--wait-ms", "20000"], within: 60)
    #expect(audit.status == 2, "\(audit.output) \(audit.errors)")
    let lines = audit.output.split(separator: "\n").map(String.init)
    let checked = lines.filter { $0.hasPrefix("audit noise worker 0 ") }
    #expect(checked.count >= 4, "\(audit.output)")
    #expect(!audit.output.contains("audit ok"))
    #expect(
      checked.allSatisfy {
        $0.contains(": below rounding noise (the gradients are ")
          && $0.contains(": nothing left to audit)")
      })
    let summary = try #require(lines.last)
    #expect(
      summary.hasPrefix(
        "audit: could not run: every gradient was below rounding noise (the gradients are "),
      "\(summary)")

    let status = try runPstrain(["status", "--connect", endpoint], within: 30)
    #expect(status.status == 0)
    #expect(status.output.contains("below rounding noise (the gradients are "), "\(status.output)")
    #expect(!status.output.contains("passed (rel err"))
    let lastAudit = try #require(try serverStatus(endpoint)["last_audit"] as? [String: Any])
    #expect(lastAudit["conclusive"] as? Bool == false)
    #expect((lastAudit["gradient_magnitude"] as? Double ?? 1) < 1e-12)
  }

  /// The plot draws audits below rounding noise apart: open grey circles at
  /// the smallest error each could flag, with a legend entry, never filled
  /// like a measured error.
  @Test func thePlotDrawsAuditsBelowNoiseApart() throws {
    let svg = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-noise-\(UUID().uuidString).svg"
    ).path
    defer { try? FileManager.default.removeItem(atPath: svg) }
    let run = try runPstrain(["train", "--plot", svg])
    #expect(run.status == 0, "\(run.errors)")
    let text = try String(contentsOfFile: svg, encoding: .utf8)
    #expect(text.contains("fill=\"none\" stroke=\"#888888\""))
    #expect(!text.contains("fill=\"#999999\""))
    #expect(text.contains("below rounding noise (the gradients are "))
    #expect(text.contains(": nothing left to audit), at the error each could flag"))
  }
}
