import Foundation
import Testing

/// `--metrics` on the server, a worker and the coordinator: Prometheus text with live values.
@Suite(
  .serialized,
  .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
struct MetricsTests {
  /// `curl URL`, bounded.
  func scrape(_ url: String) throws -> String {
    try runTool("/usr/bin/curl", ["-s", "--max-time", "5", url], seconds: 30).output
  }

  /// The value of the first sample line of `name` (with its labels, if given).
  func value(_ text: String, _ name: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
      .flatMap { Double($0.split(separator: " ").last!) }
  }

  func metricsURL(_ launched: Launched) throws -> String {
    String(try launched.line(startingWith: "metrics ").dropFirst("metrics ".count))
  }

  @Test func everyRoleServesLiveMetrics() throws {
    let data = try generateData(rows: 100, seed: 2, noise: 0.3)
    let (server, worker, coordinator) = try startRolesWithMetrics(data: data)
    defer { [server, worker, coordinator].forEach { $0.stop() } }
    let (serverURL, workerURL, coordinatorURL) = (
      try metricsURL(server), try metricsURL(worker), try metricsURL(coordinator)
    )
    try waitFor("gradients and audits", within: 30) {
      let applied = value(try scrape(serverURL), "pstrain_gradients_applied_total") ?? 0
      let passed = value(try scrape(coordinatorURL), "pstrain_audits_total{result=\"passed\"}") ?? 0
      return applied > 100 && passed > 0
    }
    let first = try scrape(serverURL)
    #expect(value(first, "pstrain_workers_live") == 1)
    #expect(first.contains("pstrain_gradient_staleness_versions_bucket"))
    let applied = try #require(value(first, "pstrain_gradients_applied_total"))
    var latest = first
    do {
      try waitFor("more gradients", within: 30) {
        latest = try scrape(serverURL)
        return (value(latest, "pstrain_gradients_applied_total") ?? 0) > applied
      }
    } catch {
      Issue.record(
        "\(error); worker: \(worker.output.suffix(300)) \(worker.errors.suffix(300)); last scrape: \(latest.suffix(400))"
      )
    }
    let workerText = try scrape(workerURL)
    #expect((value(workerText, "pstrain_push_round_trip_seconds_count") ?? 0) > 0)
    #expect(workerText.contains("pstrain_push_round_trip_seconds_bucket"))
    let audits = try scrape(coordinatorURL)
    #expect(value(audits, "pstrain_audits_total{result=\"failed\"}") == 0)
    #expect((value(audits, "pstrain_audit_max_relative_error") ?? 1) < 1e-6)
    #expect(try get(serverURL.replacingOccurrences(of: "/metrics", with: "/nothing")).status == 404)
  }

  /// `train --metrics HOST:PORT`: the server, the coordinator and the two workers serve
  /// their metrics on PORT, PORT+1, PORT+2 and PORT+3; port 0 is refused (the ports must be
  /// known to scrape them).
  @Test func trainServesEachProcesssMetricsOnConsecutivePorts() throws {
    let refused = try runPstrain(["train", "--metrics", "127.0.0.1:0"], within: 30)
    #expect(refused.status != 0 && refused.errors.contains("--metrics needs HOST:PORT"))
    // The last process's port must exist too: a port past 65535 would wrap around.
    let past = try runPstrain(["train", "--metrics", "127.0.0.1:65534"], within: 30)
    #expect(past.status != 0 && past.errors.contains("need ports 65534...65537, past 65535"))
    let wrapped = try runPstrain(["server", "--metrics", "127.0.0.1:65536"], within: 30)
    #expect(wrapped.status != 0 && wrapped.errors.contains("a port 0...65535"), "\(wrapped.errors)")
    // Four consecutive ports that are free now.
    var port = 0
    try waitFor("four consecutive free loopback ports", within: 10) {
      port = try freeLoopbackPort()
      return port + 3 <= 65535 && (1...3).allSatisfy { isFreeLoopbackPort(port + $0) }
    }
    let train = try Launched([
      "train", "--epochs", "100000000", "--metrics", "127.0.0.1:\(port)",
    ])
    defer { train.stop() }
    let said = try train.line(startingWith: "train: metrics at")
    #expect(
      said.hasSuffix("server \(port), coordinator \(port + 1), workers \(port + 2)-\(port + 3)"),
      "\(said)")
    let expected = [
      (port, "pstrain_version"), (port + 1, "pstrain_audits_total"),
      (port + 2, "pstrain_pushes_total"), (port + 3, "pstrain_pushes_total"),
    ]
    for (port, metric) in expected {
      try waitFor("\(metric) at 127.0.0.1:\(port)", within: 30) {
        (try? scrape("http://127.0.0.1:\(port)/metrics"))?.contains("\n\(metric)") == true
      }
    }
    #expect(try train.terminate() == 128 + SIGTERM, "\(train.errors)")
  }

  /// A sparse run's worker counts and times its pushes as a dense one does.
  @Test func aSparseWorkerCountsAndTimesItsPushes() throws {
    let data = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-metrics-clicks-\(UUID().uuidString).libsvm"
    ).path
    defer { try? FileManager.default.removeItem(atPath: data) }
    let generated = try runPstrain([
      "data", "generate-clicks", "--rows", "2000", "--features", "2000", "--seed", "5", "--out",
      data,
    ])
    #expect(generated.status == 0, "\(generated.errors)")
    var port = 0
    try waitFor("three consecutive free loopback ports", within: 10) {
      port = try freeLoopbackPort()
      return port + 2 <= 65535 && (1...2).allSatisfy { isFreeLoopbackPort(port + $0) }
    }
    let train = try Launched([
      "train", "--model", "sparse-logreg", "--data", data, "--workers", "1", "--epochs",
      "1000000", "--batch-size", "4", "--metrics", "127.0.0.1:\(port)",
    ])
    defer { train.stop() }
    let said = try train.line(startingWith: "train: metrics at")
    #expect(
      said.hasSuffix("server \(port), coordinator \(port + 1), workers \(port + 2)"), "\(said)")
    var text = ""
    try waitFor(
      "pushes timed and a training loss at the sparse worker's 127.0.0.1:\(port + 2)", within: 60
    ) {
      text = (try? scrape("http://127.0.0.1:\(port + 2)/metrics")) ?? ""
      // The training loss comes with the first progress report, about a second in.
      return (value(text, "pstrain_push_round_trip_seconds_count") ?? 0) > 0
        && value(text, "pstrain_train_loss") != nil
    }
    let pushes = try #require(value(text, "pstrain_pushes_total"), "\(text)")
    let timed = try #require(value(text, "pstrain_push_round_trip_seconds_count"), "\(text)")
    #expect(pushes > 0 && timed <= pushes, "\(pushes) pushes, \(timed) timed")
    #expect(try train.terminate() == 128 + SIGTERM, "\(train.errors)")
  }
}
