import Foundation
import Testing
import TrainingMath
import WireProtocol

/// Real processes on tcp loopback. Serialized: each test starts its own cluster.
@Suite(.serialized) struct ClusterTests {
  @Test func trainWithDefaultsConvergesAndPassesEveryAudit() throws {
    let run = try runPstrain(["train", "--json"])
    #expect(run.status == 0, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    let loss = try #require(summary["loss"] as? Double)
    #expect(loss < 1e-3)
    let predictions = try #require(summary["predictions"] as? [[String: Double]])
    #expect(predictions.map { $0["x"] } == [1, -1])
    #expect(predictions.map { $0["label"] } == [-1, 1])
    for row in predictions { #expect(abs(row["prediction"]! - row["label"]!) < 1e-6) }
    let audits = try #require(summary["audits"] as? [String: Any])
    #expect((audits["count"] as? Int ?? 0) > 0)
    #expect(audits["failed"] as? Int == 0)
    #expect((audits["max_relative_error"] as? Double ?? 1) <= 1e-9)
    // Audits under the default budget: a sampling probability, what it implies, and each
    // worker audited early (the push after its first).
    #expect(summary["audit_budget"] as? Double == 0.02)
    let probability = try #require(summary["audit_probability"] as? Double)
    #expect(probability > 0 && probability <= 1)
    #expect(
      summary["detection_pushes_999"] as? Int
        == Int((log(1 - 0.999) / log1p(-probability)).rounded(.up)))
    let coverage = try #require(summary["coverage"] as? [[String: Any]])
    #expect(coverage.compactMap { $0["worker"] as? Int } == [0, 1])
    #expect(coverage.allSatisfy { ($0["audits"] as? Int ?? 0) >= 1 })
    #expect((summary["weights"] as? [Double])?.count == 3)
    #expect(summary["updates"] as? Int == 1000)
  }

  @Test func oneSyncWorkerReproducesTheSeedWeightsThroughRealProcesses() throws {
    let run = try runPstrain([
      "train", "--workers", "1", "--mode", "sync", "--epochs", "160", "--lr", "0.05", "--json",
    ])
    #expect(run.status == 0, "\(run.errors)")
    let weights = try exactNumbers("weights", in: run.output)
    #expect(weights == [0.26834251180335367, 0.2681246232434451, -0.5366628787432715])
  }

  /// 20,000 layers: 160 KB of weights each way, so gradients and weights travel
  /// with their values in frames of their own, sent from the tensors' storage
  /// without a copy. Through real processes the result is the in-process SGD's,
  /// bit for bit.
  /// (In async mode the server applies each gradient where it arrived, in
  /// libzmq's buffer; in sync mode it keeps a copy for the step.)
  @Test(arguments: ["sync", "async"])
  func largeTensorsInValuesFramesTrainExactlyAsInProcess(mode: String) throws {
    let (layers, epochs, learningRate) = (20_000, 10, 1e-5)
    #expect(layers * 8 >= FrameSplitter.defaultThreshold)
    // Audit records carry two tensors of this size as well.
    let run = try runPstrain([
      "train", "--workers", "1", "--mode", mode, "--layers", "\(layers)", "--epochs",
      "\(epochs)", "--lr", "\(learningRate)", "--audit-every", "4", "--json",
    ])
    #expect(run.status == 0, "\(run.errors.suffix(400))")
    let summary = try lastJSONObject(run.output)
    let weights = try exactNumbers("weights", in: run.output)
    #expect((summary["audits"] as? [String: Any])?["count"] as? Int ?? 0 > 0)
    let model = ChainModel(layers: layers)
    let objective = Objective(model: model)
    var expected = model.initialWeights()
    var sgd = try Optimizer(learningRate: learningRate)
    for _ in 0..<epochs {
      for sample in Dataset.seed.samples {
        sgd.apply(gradient: objective.gradient(weights: expected, samples: [sample]), to: &expected)
      }
    }
    #expect(weights.count == layers)
    let differing = zip(weights, expected).filter { $0.bitPattern != $1.bitPattern }.count
    #expect(differing == 0, "\(differing) of \(layers) weights differ from in-process SGD")
    #expect(expected != model.initialWeights())
  }

  @Test(arguments: ["async", "sync"])
  func rolesStartedByHandTrainToTheSameQuality(mode: String) throws {
    let (server, endpoint) = try startServer(["--mode", mode, "--workers", "2"])
    defer { server.stop() }
    let coordinator = try Launched(["coordinator", "--connect", endpoint, "--every", "5", "--json"])
    defer { coordinator.stop() }
    _ = try coordinator.line(startingWith: "{\"type\":\"subscribed\"")
    let workers = try (0..<2).map { index in
      try Launched(["worker", "--connect", endpoint, "--shard", "\(index)/2", "--epochs", "500"])
    }
    defer { for worker in workers { worker.stop() } }
    for worker in workers { #expect(try worker.wait() == 0, "\(worker.errors)") }

    let status = try runPstrain(["status", "--connect", endpoint, "--json"], within: 30)
    #expect(status.status == 0)
    let object = try lastJSONObject(status.output)
    let weights = try #require(object["weights"] as? [Double])
    let product = weights.reduce(1, *)
    // loss = 1/2 (product*x - label)^2 for both samples
    #expect(0.5 * (product + 1) * (product + 1) < 1e-3)
    #expect(object["version"] as? Int == (mode == "sync" ? 500 : 1000))

    #expect(try coordinator.terminate() == 0, "\(coordinator.errors)")
    let audits = try lastJSONObject(coordinator.output)["audits"] as? [String: Any]
    #expect((audits?["count"] as? Int ?? 0) > 0)
    #expect(audits?["failed"] as? Int == 0)
    #expect(try server.terminate() == 0)
    #expect(server.output.contains("server: stopped at version"))
  }

  func noisyData() throws -> String { try generateData(rows: 200, seed: 7, noise: 0.3) }

  @Test(arguments: ["scale=1.000001", "flip=1"])
  func auditExitsOneWhileAFaultyWorkerRunsAndZeroWithoutIt(fault: String) throws {
    let data = try noisyData()
    let (server, endpoint) = try startServer()
    defer { server.stop() }
    let clean = try Launched([
      "worker", "--connect", endpoint, "--shard", "0/2", "--data", data, "--epochs", "1000000",
    ])
    defer { clean.stop() }
    let faulty = try Launched([
      "worker", "--connect", endpoint, "--shard", "1/2", "--data", data, "--epochs", "1000000",
      "--fault", fault,
    ])
    defer { faulty.stop() }
    _ = try clean.line(startingWith: "worker 0: shard")
    _ = try faulty.line(startingWith: "worker 1: shard")

    let failing = try runPstrain(
      ["audit", "--connect", endpoint, "--data", data, "--json"], within: 60)
    #expect(failing.status == 1, "\(failing.output) \(failing.errors)")
    let verdict = try lastJSONObject(failing.output)
    #expect((verdict["audits"] as? [String: Any])?["failed_workers"] as? [Int] == [1])

    // The faulty worker leaves the membership on SIGTERM; the clean one keeps training.
    #expect(try faulty.terminate() != 0)
    #expect(try workerIDs(endpoint) == [0])
    let passing = try runPstrain(["audit", "--connect", endpoint, "--data", data], within: 60)
    #expect(passing.status == 0, "\(passing.output) \(passing.errors)")
    #expect(passing.output.contains("audit: passed"))
    #expect(clean.process.isRunning)
  }

  func status(_ endpoint: String) throws -> [String: Any] { try serverStatus(endpoint) }

  func workerIDs(_ endpoint: String) throws -> [Int] {
    (try status(endpoint)["workers"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
  }

  @Test func aSyncRunGoesOnWhenAWorkerIsStopped() throws {
    let (server, endpoint) = try startServer(["--mode", "sync", "--workers", "2"])
    defer { server.stop() }
    let data = try noisyData()
    let workers = try (0..<2).map { index in
      try Launched([
        "worker", "--connect", endpoint, "--shard", "\(index)/2", "--data", data, "--epochs",
        "1000000",
      ])
    }
    defer { for worker in workers { worker.stop() } }
    for (index, worker) in workers.enumerated() {
      _ = try worker.line(startingWith: "worker \(index): shard")
    }
    #expect(try workers[1].terminate() != 0)
    #expect(workers[1].errors.contains("interrupted"))
    #expect(try workerIDs(endpoint) == [0])
    // Worker 0 alone now completes every step: the version keeps rising.
    let before = try #require(try status(endpoint)["version"] as? Int)
    var after = before
    let deadline = Date().addingTimeInterval(30)
    while after <= before + 10 && Date() < deadline {
      usleep(50_000)
      after = try #require(try status(endpoint)["version"] as? Int)
    }
    #expect(after > before + 10)
    #expect(workers[0].process.isRunning)
  }

  @Test func auditExitsTwoWhenItCannotRun() throws {
    // No server at all.
    let (probe, endpoint) = try startServer()
    #expect(try probe.terminate() == 0)
    let noServer = try runPstrain(
      ["audit", "--connect", endpoint, "--timeout-ms", "500"], within: 30)
    #expect(noServer.status == 2)
    #expect(noServer.errors.contains("no status"))
    // A server with no workers.
    let (server, live) = try startServer()
    defer { server.stop() }
    let idle = try runPstrain(["audit", "--connect", live], within: 30)
    #expect(idle.status == 2)
    #expect(idle.errors.contains("no workers are training"))
  }

  @Test func badFlagsFailWithAClearMessageAndStartNothing() throws {
    let cases: [([String], String)] = [
      (["server", "--lr", "-1"], "--lr"),
      (["server", "--mode", "fast"], "mode"),
      (["worker", "--connect", "tcp://127.0.0.1:1", "--shard", "2/2"], "shard"),
      (["worker", "--connect", "127.0.0.1:1", "--shard", "0/2"], "--connect"),
      (["train", "--fault", "melt=1"], "fault"),
      (["train", "--workers", "0"], "--workers"),
      (["data", "generate", "--rows", "0", "--out", "-"], "rows"),
    ]
    for (arguments, mention) in cases {
      let run = try runPstrain(arguments, within: 30)
      #expect(run.status != 0, "\(arguments)")
      #expect(run.errors.contains(mention), "\(arguments): \(run.errors)")
    }
    let missing = try runPstrain(["train", "--data", "/nonexistent/file.csv"], within: 30)
    #expect(missing.status != 0)
    #expect(missing.errors.contains("/nonexistent/file.csv"))
  }

  @Test func generatedDataIsDeterministicAndTrains() throws {
    let a = try runPstrain(["data", "generate", "--rows", "50", "--seed", "3", "--out", "-"])
    let b = try runPstrain(["data", "generate", "--rows", "50", "--seed", "3", "--out", "-"])
    #expect(a.status == 0 && a.output == b.output)
    #expect(a.output.hasPrefix("x,label\n"))
    #expect(a.output.split(separator: "\n").count == 51)
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-\(UUID().uuidString).csv")
    try a.output.write(to: path, atomically: true, encoding: .utf8)
    let run = try runPstrain(["train", "--data", path.path, "--epochs", "30", "--json"])
    #expect(run.status == 0, "\(run.errors)")
    #expect((try lastJSONObject(run.output)["loss"] as? Double ?? 1) < 1e-3)
  }

  @Test func float32WeightsTrainAndAuditsStillCatchAFault() throws {
    let clean = try runPstrain(["train", "--dtype", "float32", "--json"])
    #expect(clean.status == 0, "\(clean.errors)")
    let summary = try lastJSONObject(clean.output)
    #expect((summary["loss"] as? Double ?? 1) < 1e-6)
    // Read the numbers with Double(String), which is exact (JSONSerialization may not be).
    let line = try #require(clean.output.split(separator: "\n").last)
    let list = try #require(line.range(of: "\"weights\":[")).upperBound
    let weights = line[list...].prefix(while: { $0 != "]" }).split(separator: ",").compactMap {
      Double($0)
    }
    #expect(weights.count == 3)
    #expect(weights.allSatisfy { Double(Float($0)) == $0 })
    let faulty = try runPstrain(["train", "--dtype", "float32", "--fault", "scale=1.001", "--json"])
    #expect(faulty.status == 1)
    #expect(
      ((try lastJSONObject(faulty.output)["audits"] as? [String: Any])?["failed"] as? Int ?? 0) > 0)
  }

  /// Frames of pushes through real processes: every gradient applied once, audits
  /// pass, and a faulty worker's frames are still audited push by push.
  @Test func framesOfPushesTrainAndAreAuditedPushByPush() throws {
    let data = try generateData(rows: 48, seed: 9, noise: 0.05)
    let flags = [
      "train", "--data", data, "--pipeline", "8", "--pushes-per-frame", "4", "--epochs", "40",
      "--lr", "0.02", "--json",
    ]
    let clean = try runPstrain(flags)
    #expect(clean.status == 0, "\(clean.errors)")
    let summary = try lastJSONObject(clean.output)
    #expect(summary["gradients_applied"] as? Int == 48 * 40)
    let audits = try #require(summary["audits"] as? [String: Any])
    #expect((audits["count"] as? Int ?? 0) > 0 && audits["failed"] as? Int == 0)
    let faulty = try runPstrain(flags + ["--fault", "flip=1"])
    #expect(faulty.status == 1)
    #expect(
      ((try lastJSONObject(faulty.output)["audits"] as? [String: Any])?["failed"] as? Int ?? 0) > 0)
  }

  @Test func trainFailsWhenAWorkerIsFaulty() throws {
    let run = try runPstrain(["train", "--fault", "flip=0", "--epochs", "100", "--json"])
    #expect(run.status == 1)
    let summary = try lastJSONObject(run.output)
    #expect(summary["ok"] as? Bool == false)
    #expect(((summary["audits"] as? [String: Any])?["failed"] as? Int ?? 0) > 0)
  }
}

/// The benchmarks keep working: a quick run prints figures with their baselines.
/// (No timing is asserted; figures are for people and docs/performance.md.)
@Suite(.serialized) struct BenchSmokeTests {
  @Test func quickBenchPrintsFiguresWithBaselines() throws {
    let run = try runPstrain(["bench", "--quick", "--json", "roundtrip", "memory"], within: 120)
    #expect(run.status == 0, "\(run.errors)")
    let line = try #require(run.output.split(separator: "\n").last)
    let figures = try #require(
      try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [[String: Any]])
    #expect(figures.count == 5)
    for figure in figures {
      #expect((figure["value"] as? Double ?? 0) > 0, "\(figure)")
      #expect((figure["baseline"] as? Double ?? 0) > 0, "\(figure)")
    }
  }
}

/// Several server shards, each owning a key range of the parameters.
@Suite(.serialized) struct ServerShardTests {
  func weights(_ arguments: [String]) throws -> [Double] {
    let run = try runPstrain(["train", "--json"] + arguments)
    #expect(run.status == 0, "\(run.errors.suffix(400))")
    return try exactNumbers("weights", in: run.output)
  }

  @Test func shardedServersEqualOneServerBitForBitInSyncMode() throws {
    let one = try weights(["--mode", "sync", "--layers", "5", "--lr", "0.01", "--epochs", "150"])
    for shards in [2, 3] {
      let split = try weights([
        "--mode", "sync", "--layers", "5", "--lr", "0.01", "--epochs", "150", "--server-shards",
        "\(shards)",
      ])
      #expect(split.map(\.bitPattern) == one.map(\.bitPattern), "\(shards) shards")
    }
  }

  @Test func auditAndStatusSpanAllShards() throws {
    let data = try generateData(rows: 100, seed: 4, noise: 0.3)
    let first = try startServer(["--shard", "0/2", "--layers", "4", "--lr", "0.01"])
    defer { first.0.stop() }
    let second = try startServer(["--shard", "1/2", "--layers", "4", "--lr", "0.01"])
    defer { second.0.stop() }
    let endpoints = "\(first.1),\(second.1)"
    let faulty = try Launched([
      "worker", "--connect", endpoints, "--shard", "0/1", "--data", data, "--epochs", "1000000",
      "--fault", "flip=3",
    ])
    defer { faulty.stop() }
    _ = try faulty.line(startingWith: "worker 0:")
    // flip=3 corrupts a coordinate that lives on the second server: the merged audit sees it.
    let audit = try runPstrain(["audit", "--connect", endpoints, "--data", data], within: 60)
    #expect(audit.status == 1, "\(audit.output) \(audit.errors)")
    let status = try runPstrain(["status", "--connect", endpoints, "--json"], within: 30)
    #expect((try lastJSONObject(status.output)["weights"] as? [Double])?.count == 4)
    let reversed = try runPstrain(["status", "--connect", "\(second.1),\(first.1)"], within: 30)
    #expect(reversed.status != 0)
    #expect(reversed.errors.contains("shard order"))
  }
}

/// `train --plot` writes an SVG that renders as a picture.
@Suite(
  .serialized,
  .enabled(
    if: FileManager.default.isExecutableFile(atPath: "/usr/bin/rsvg-convert"), "needs rsvg-convert")
)
struct PlotTests {
  @Test func thePlotRendersToAPicture() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-plot-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let svg = folder.appendingPathComponent("run.svg").path
    let png = folder.appendingPathComponent("run.png").path
    // Audits every 10 versions besides the budget's sample, so both workers' audits show.
    let run = try runPstrain([
      "train", "--plot", svg, "--fault", "flip=1", "--epochs", "200", "--audit-every", "10",
    ])
    #expect(run.status == 1)  // the faulty worker's audits fail, and show in red
    let text = try String(contentsOfFile: svg, encoding: .utf8)
    #expect(text.contains("<polyline"))
    #expect(text.contains("fill=\"#d62728\""))
    #expect(text.contains("fill=\"#2ca02c\""))
    #expect(try runTool("/usr/bin/rsvg-convert", [svg, "-o", png]).status == 0)
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: png)))
    #expect(bytes.count > 10_000)
    #expect(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    // IHDR: width and height, big-endian, at bytes 16..<24.
    let width = bytes[16..<20].reduce(0) { $0 << 8 | Int($1) }
    let height = bytes[20..<24].reduce(0) { $0 << 8 | Int($1) }
    // One line of legend under the plot per kind of audit drawn.
    let legendLines = text.components(separatedBy: "class=\"legend\"").count - 1
    #expect(legendLines >= 2)
    #expect(width == 760 && height == 610 + 16 * legendLines)
  }
}

/// Flags, PSTRAIN_* variables and a config file, with the command line first.
@Suite(.serialized) struct ConfigurationTests {
  func learningRate(_ extra: [String], environment: [String: String]) throws -> Double? {
    let server = try Launched(
      ["server", "--bind", "tcp://127.0.0.1:*"] + extra, environment: environment)
    defer { server.stop() }
    let endpoint = String(try server.line(startingWith: "listening ").dropFirst("listening ".count))
    let status = try serverStatus(endpoint)
    #expect(try server.terminate() == 0)
    return status["learning_rate"] as? Double
  }

  @Test func commandLineBeatsEnvironmentBeatsFile() throws {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-\(UUID().uuidString).conf")
    try "# settings\n[common]\nlr = 0.2\n[server]\nmode = sync\n".write(
      to: file, atomically: true, encoding: .utf8)
    let config = ["--config", file.path]
    #expect(try learningRate(config, environment: [:]) == 0.2)
    #expect(try learningRate(config, environment: ["PSTRAIN_LR": "0.3"]) == 0.3)
    #expect(try learningRate(config + ["--lr", "0.7"], environment: ["PSTRAIN_LR": "0.3"]) == 0.7)
    // A command's own variable wins over the shared one.
    #expect(
      try learningRate(config, environment: ["PSTRAIN_LR": "0.3", "PSTRAIN_SERVER_LR": "0.4"])
        == 0.4)
    #expect(try learningRate([], environment: ["PSTRAIN_CONFIG": file.path]) == 0.2)
    let bad = try runPstrain(
      ["status", "--config", "/nonexistent.conf", "--connect", "tcp://127.0.0.1:1"], within: 30)
    #expect(bad.status == 64)
    #expect(bad.errors.contains("cannot read config file /nonexistent.conf"))
  }
}

@Suite(.serialized) struct StatusWatchTests {
  @Test func watchRefreshesWithLiveValues() throws {
    let data = try generateData(rows: 50, seed: 1, noise: 0.1)
    let (server, endpoint) = try startServer()
    defer { server.stop() }
    let worker = try Launched([
      "worker", "--connect", endpoint, "--shard", "0/1", "--data", data, "--epochs", "1000000",
    ])
    defer { worker.stop() }
    _ = try worker.line(startingWith: "worker 0:")
    let coordinator = try Launched([
      "coordinator", "--connect", endpoint, "--every", "20", "--data", data,
    ])
    defer { coordinator.stop() }
    try waitFor("an audit verdict at the server", within: 30) {
      (try serverStatus(endpoint)["audits_reported"] as? Int ?? 0) > 0
    }
    let run = try runPstrain(
      [
        "status", "--connect", endpoint, "--watch", "--interval-ms", "200", "--count", "3",
        "--json",
      ],
      within: 30)
    #expect(run.status == 0)
    let versions = try run.output.split(separator: "\n").map { line in
      try #require(
        try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])["version"]
        as? Int
    }
    let numbers = versions.compactMap { $0 }
    #expect(numbers.count == 3)
    #expect(numbers == numbers.sorted() && (numbers.last ?? 0) > (numbers.first ?? 0))
    let table = try runPstrain(
      ["status", "--connect", endpoint, "--watch", "--interval-ms", "100", "--count", "2"],
      within: 30)
    #expect(table.output.contains("updates/s"))
    #expect(table.output.contains("passed (rel err"))
    #expect(table.output.contains("pushes applied"))
  }
}

@Suite(.serialized) struct LoggingTests {
  @Test func jsonLogsAreOneObjectPerLineAndLevelsFilter() throws {
    let (server, endpoint) = try startServer(["--log-format", "json"])
    defer { server.stop() }
    let worker = try runPstrain(
      [
        "worker", "--connect", endpoint, "--shard", "0/1", "--epochs", "2", "--log-level",
        "warning",
      ],
      within: 60)
    #expect(worker.status == 0)
    #expect(!worker.output.contains("worker 0:"))  // info lines are below the level
    #expect(try server.terminate() == 0)
    let lines = server.lines.filter { $0.hasPrefix("{") }
    #expect(lines.count >= 2)
    for line in lines {
      let object = try #require(
        try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      #expect(object["label"] as? String == "server")
      #expect(object["level"] as? String == "info")
      #expect((object["time"] as? String)?.hasPrefix("20") == true)
    }
    #expect(lines.contains { $0.contains("stopped at version 4") })
  }
}
