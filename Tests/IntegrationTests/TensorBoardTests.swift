import Foundation
import Testing

/// One run directory as `Scripts/read_tensorboard.py` reads it with the tensorboard
/// package: its event files, the records whose framing and CRCs check, the events
/// TensorBoard's loader read, and each tag's scalars as (step, value).
private struct TensorBoardRun {
  var files: [String]
  var records: Int
  var loaded: Int
  var scalars: [String: [(step: Int, value: Double)]]

  init(_ object: [String: Any]) throws {
    files = object["files"] as? [String] ?? []
    records = try #require(object["records"] as? Int)
    loaded = try #require(object["loaded"] as? Int)
    let tags = try #require(object["scalars"] as? [String: [[Double]]])
    scalars = tags.mapValues { points in points.map { (Int($0[0]), $0[1]) } }
  }

  var tags: Set<String> { Set(scalars.keys) }
  func steps(_ tag: String) -> [Int] { scalars[tag]?.map(\.step) ?? [] }
  func values(_ tag: String) -> [Double] { scalars[tag]?.map(\.value) ?? [] }
}

private let readerScript = repositoryRoot.appendingPathComponent(
  "Tests/IntegrationTests/Scripts/read_tensorboard.py"
).path

/// The last line of `output` that is a JSON object (the tensorboard package may
/// print warnings before it).
private func lastObject(_ output: String) throws -> [String: Any] {
  let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") })
  return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

/// The runs under `directory`, read back by TensorBoard.
private func readBack(_ directory: String) throws -> [String: TensorBoardRun] {
  let read = try runTool(try #require(projectPython()), [readerScript, directory], seconds: 120)
  #expect(read.status == 0, "\(read.output.suffix(2000))")
  return try lastObject(read.output).mapValues {
    try TensorBoardRun(try #require($0 as? [String: Any]))
  }
}

private func temporaryPath(_ name: String) -> String {
  FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-\(name)-\(UUID().uuidString)"
  ).path
}

/// `--tensorboard DIR` (issue 14): real runs write event files that TensorBoard's
/// own reader reads back, every record of them, with exactly the scalars pstrain
/// reported.
@Suite(.serialized, .enabled(if: projectPython() != nil, "needs .venv (deploy/python-env.sh)"))
struct TensorBoardTests {
  /// The server's run: its four tags, one point each per write, at increasing
  /// versions, the last at the final version.
  private func checkServerRun(_ run: TensorBoardRun, finalVersion: Int, learningRate: Double) {
    #expect(
      run.tags == [
        "throughput/samples_per_second", "staleness/mean", "staleness/max",
        "optimizer/learning_rate",
      ])
    let steps = run.steps("optimizer/learning_rate")
    #expect(!steps.isEmpty)
    // Async: every version applied a gradient with its staleness, so every point has all four.
    for tag in run.tags { #expect(run.steps(tag) == steps, "\(tag)") }
    #expect(zip(steps, steps.dropFirst()).allSatisfy { $0 < $1 }, "\(steps)")
    #expect(steps.last == finalVersion)
    #expect(run.values("optimizer/learning_rate").allSatisfy { Float($0) == Float(learningRate) })
    #expect(run.values("throughput/samples_per_second").allSatisfy { $0 > 0 })
    #expect(run.values("staleness/mean").allSatisfy { $0 >= 0 })
    // The file version and one event per point: TensorBoard read every record.
    #expect(run.records == 1 + steps.count)
    #expect(run.loaded == run.records)
  }

  /// A dense softmax classifier over two server shards, with held-out data and
  /// periodic audits (every audit both replays and runs finite differences).
  @Test func aDenseRunWritesWhatItReports() throws {
    let all = temporaryPath("tb-classes") + ".csv"
    let data = temporaryPath("tb-train") + ".csv"
    let test = temporaryPath("tb-test") + ".csv"
    let logs = temporaryPath("tb-logs")
    defer {
      for path in [all, data, test, logs] { try? FileManager.default.removeItem(atPath: path) }
    }
    let generated = try runPstrain([
      "data", "generate", "--rows", "400", "--seed", "1", "--classes", "3", "--features", "4",
      "--out", all,
    ])
    #expect(generated.status == 0, "\(generated.errors)")
    let lines = try String(contentsOfFile: all, encoding: .utf8).split(separator: "\n")
    try (lines.prefix(301).joined(separator: "\n") + "\n").write(
      toFile: data, atomically: true, encoding: .utf8)
    try (([lines[0]] + lines.suffix(100)).joined(separator: "\n") + "\n").write(
      toFile: test, atomically: true, encoding: .utf8)

    let run = try runPstrain([
      "train", "--model", "softmax", "--data", data, "--test-data", test, "--epochs", "20",
      "--lr", "0.1", "--batch-size", "10", "--server-shards", "2", "--eval-every", "100",
      "--audit-budget", "0", "--audit-every", "40", "--json", "--tensorboard", logs,
    ])
    #expect(run.status == 0, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    let updates = try #require(summary["updates"] as? Int)
    let audits = try #require((summary["audits"] as? [String: Any])?["count"] as? Int)
    let history = try #require(summary["history"] as? [[String: Any]])
    let evaluated = history.compactMap { $0["version"] as? Int }

    let runs = try readBack(logs)
    #expect(Set(runs.keys) == ["coordinator", "server-0", "server-1"])
    for (name, run) in runs { #expect(run.files.count == 1, "\(name): \(run.files)") }
    for shard in ["server-0", "server-1"] {
      checkServerRun(try #require(runs[shard]), finalVersion: updates, learningRate: 0.1)
    }

    let coordinator = try #require(runs["coordinator"])
    #expect(
      coordinator.tags == [
        "loss/test", "accuracy/test", "audit/passed", "audit/relative_error", "loss/train",
      ])
    // One point per evaluation in the summary's history, at its versions, with its figures.
    #expect(coordinator.steps("loss/test") == evaluated)
    #expect(coordinator.steps("accuracy/test") == evaluated)
    // (As the floats TensorBoard stores: JSON parsing may differ in the last bit of a double.)
    #expect(
      coordinator.values("loss/test").map(Float.init)
        == history.compactMap { ($0["test_loss"] as? Double).map(Float.init) })
    #expect(
      coordinator.values("accuracy/test").map(Float.init)
        == history.compactMap { ($0["test_accuracy"] as? Double).map(Float.init) })
    #expect(evaluated.last == updates)
    // One point per audit the summary counts, every one passed.
    #expect(audits > 0)
    #expect(coordinator.steps("audit/passed").count == audits)
    #expect(coordinator.values("audit/passed").allSatisfy { $0 == 1 })
    #expect(coordinator.steps("audit/relative_error") == coordinator.steps("audit/passed"))
    #expect(coordinator.steps("loss/train") == coordinator.steps("audit/passed"))
    #expect(coordinator.steps("audit/passed").allSatisfy { (1...updates).contains($0) })
    #expect(coordinator.values("loss/train").allSatisfy { $0.isFinite && $0 >= 0 })
    // Evaluations and audits interleave in one file: every record was read.
    #expect(coordinator.records == 1 + evaluated.count + audits)
    #expect(coordinator.loaded == coordinator.records)

    // The reader stops quietly at a damaged record: the CRC check here refuses it,
    // and TensorBoard loads one event fewer.
    let file = logs + "/coordinator/" + coordinator.files[0]
    let flipped = try lastObject(
      try runTool(try #require(projectPython()), [readerScript, "--flip", file]).output)
    #expect(flipped["crc_refused"] as? Bool == true)
    #expect(flipped["loaded"] as? Int == coordinator.records - 1)
  }

  /// A sparse model over two shards: the coordinator adds the AUC.
  @Test func aSparseRunWritesTheAUC() throws {
    let data = temporaryPath("tb-clicks") + ".libsvm"
    let test = temporaryPath("tb-clicks-test") + ".libsvm"
    let logs = temporaryPath("tb-sparse-logs")
    defer { for path in [data, test, logs] { try? FileManager.default.removeItem(atPath: path) } }
    for (path, rows, seed) in [(data, "600", "3"), (test, "200", "4")] {
      let generated = try runPstrain([
        "data", "generate-clicks", "--rows", rows, "--features", "2000", "--seed", seed, "--out",
        path,
      ])
      #expect(generated.status == 0, "\(generated.errors)")
    }
    let run = try runPstrain([
      "train", "--model", "sparse-logreg", "--data", data, "--test-data", test, "--epochs", "1",
      "--batch-size", "4", "--server-shards", "2", "--audit-budget", "0", "--audit-every", "20",
      "--json", "--tensorboard", logs,
    ])
    #expect(run.status == 0, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    let version = try #require(summary["version"] as? Int)
    let audits = try #require(summary["audits"] as? Int)
    let testVersion = try #require(summary["test_version"] as? Int)
    let auc = try #require(summary["test_auc"] as? Double)

    let runs = try readBack(logs)
    #expect(Set(runs.keys) == ["coordinator", "server-0", "server-1"])
    for shard in ["server-0", "server-1"] {
      checkServerRun(try #require(runs[shard]), finalVersion: version, learningRate: 0.1)
    }
    let coordinator = try #require(runs["coordinator"])
    #expect(
      coordinator.tags == [
        "loss/test", "accuracy/test", "auc/test", "audit/passed", "audit/relative_error",
        "loss/train",
      ])
    let evaluated = coordinator.steps("loss/test")
    #expect(coordinator.steps("auc/test") == evaluated)
    #expect(evaluated.last == testVersion)
    #expect(coordinator.values("auc/test").last.map(Float.init) == Float(auc))
    #expect(coordinator.steps("audit/passed").count == audits)
    #expect(coordinator.steps("loss/train") == coordinator.steps("audit/passed"))
    #expect(coordinator.records == 1 + evaluated.count + audits)
    #expect(coordinator.loaded == coordinator.records)
  }

  /// A directory that cannot be made stops `train`, `server` and `coordinator` at
  /// once with one line, before any process starts or any training.
  @Test func aDirectoryThatCannotBeMadeStopsTheRunAtOnce() throws {
    let file = temporaryPath("tb-not-a-directory")
    try Data([1]).write(to: URL(fileURLWithPath: file))
    defer { try? FileManager.default.removeItem(atPath: file) }
    for arguments in [
      ["train", "--epochs", "1"],
      ["server", "--bind", "tcp://127.0.0.1:*"],
      ["coordinator", "--connect", "tcp://127.0.0.1:1"],
    ] {
      let run = try runPstrain(arguments + ["--tensorboard", file + "/logs"], within: 30)
      #expect(run.status == 1, "\(arguments[0]): \(run.errors)")
      let lines = run.errors.split(separator: "\n")
      #expect(lines.count == 1, "\(arguments[0]): \(run.errors)")
      #expect(
        lines.first?.hasPrefix("pstrain: --tensorboard \(file)/logs: cannot create") == true,
        "\(arguments[0]): \(run.errors)")
      #expect(run.errors.contains("Not a directory"), "\(run.errors)")
      #expect(!run.output.contains("listening"), "\(arguments[0]) started: \(run.output)")
    }
  }

  /// A write that fails mid-run (a file-size limit set on the running server, as
  /// a full disk fails it) is one warning; the server trains on and stops cleanly.
  /// Its output goes through a pipe (`cat` copies it to a file): the limit binds
  /// regular files only, so the warning itself is not lost to it.
  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit")))
  func aFailedWriteIsOneWarningAndTrainingGoesOn() throws {
    let logs = temporaryPath("tb-full")
    let pipe = logs + ".fifo"
    let output = logs + ".out"
    defer {
      for path in [logs, pipe, output] { try? FileManager.default.removeItem(atPath: path) }
    }
    #expect(mkfifo(pipe, 0o600) == 0)
    let copier = try Subprocess("/bin/cat", [pipe], standardOutput: output)
    defer { copier.killAndReap() }
    let server = try Subprocess(
      try pstrainBinary(),
      ["server", "--bind", "tcp://127.0.0.1:*", "--workers", "1", "--tensorboard", logs],
      standardOutput: pipe, standardError: pipe)
    defer { server.killAndReap() }
    var text: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
    try waitFor("the server to listen", within: 30) { text.contains("listening ") }
    let listening = try #require(text.split(separator: "\n").first { $0.hasPrefix("listening ") })
    let endpoint = String(listening.dropFirst("listening ".count))
    let directory = logs + "/server"
    let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first)
    let path = directory + "/" + name
    let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    // Not one byte more for the server's regular files.
    let limit = try runTool(
      "/usr/bin/prlimit", ["--pid", "\(server.pid)", "--fsize=\(size):"], seconds: 30)
    #expect(limit.status == 0, "\(limit.output)")
    // Two runs of a worker, 1.5 s apart: a point falls due after each, and at the end.
    for _ in 0..<2 {
      let worker = try runPstrain(
        ["worker", "--connect", endpoint, "--shard", "0/1", "--epochs", "40"], within: 120)
      #expect(worker.status == 0, "\(worker.errors)")
      usleep(1_500_000)
    }
    #expect(try #require(serverStatus(endpoint)["version"] as? Int) > 0)
    server.send(SIGTERM)
    #expect(server.wait(within: 15) == 0, "\(text)")
    _ = copier.wait(within: 15)
    let warnings = text.split(separator: "\n").filter { $0.contains("tensorboard:") }
    #expect(warnings.count == 1, "\(text)")
    #expect(warnings.first?.contains("File too large") == true, "\(warnings)")
    #expect(warnings.first?.contains("training goes on") == true, "\(warnings)")
    #expect(text.contains("stopped at version"), "\(text)")
    // The file holds its version record, intact, and nothing torn after it.
    #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == size)
  }
}
