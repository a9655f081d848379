import Foundation
import Testing

/// Runs `pstrain ARGUMENTS` with extra `environment` to completion (bounded).
private func pstrain(_ arguments: [String], environment: [String: String] = [:]) throws -> (
  status: Int32, output: String, errors: String
) {
  let launched = try Launched(arguments, environment: environment)
  defer { launched.stop() }
  let status = try launched.wait(within: 60)
  return (status, launched.output, launched.errors)
}

/// Runs `pstrain ARGUMENTS --config FILE` where FILE holds `text`; returns the run and FILE's path.
private func pstrain(_ arguments: [String], config text: String) throws -> (
  run: (status: Int32, output: String, errors: String), path: String
) {
  let file = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-\(UUID().uuidString).conf")
  try text.write(to: file, atomically: true, encoding: .utf8)
  defer { try? FileManager.default.removeItem(at: file) }
  return (try pstrain(arguments + ["--config", file.path]), file.path)
}

/// Negative numbers after numeric flags, in both spellings (issue 9, item 3).
@Suite struct NegativeNumberTests {
  /// Each numeric flag given -1 (or a negative value) as `--flag -1`, with the range
  /// the answer must state.
  static let cases: [(arguments: [String], expected: String)] = [
    (["train", "--lr", "-1"], "--lr must be a finite number > 0"),
    (["train", "--epochs", "-3"], "--epochs must be >= 1"),
    (["worker", "--connect", "tcp://127.0.0.1:1", "--epochs", "-3"], "--epochs must be >= 0"),
    (["train", "--workers", "-2"], "--workers must be 1...256"),
    (["train", "--audit-every", "-1"], "--audit-every must be >= 1, got -1"),
    (["train", "--audit-budget", "-0.5"], "--audit-budget must be a fraction from 0 to 1"),
    (
      ["coordinator", "--connect", "tcp://127.0.0.1:1", "--audit-budget", "-1"],
      "--audit-budget must be a fraction from 0 to 1"
    ),
    (["train", "--tolerance", "-0.5"], "--tolerance must be a finite number > 0"),
    (["train", "--layers", "-4"], "--layers must be 1...100000000"),
    (["train", "--weight-decay", "-1"], "weight decay must be a finite number >= 0"),
    (["server", "--staleness", "-1"], "--staleness must be >= 0, got -1"),
    (["server", "--dead-after-ms", "-5"], "--dead-after-ms must be >= 100, got -5"),
    (["server", "--checkpoint-every", "-1"], "--checkpoint-every must be >= 1, got -1"),
    (["server", "--epochs", "-1"], "--epochs must be >= 0, got -1"),
    (["worker", "--connect", "tcp://127.0.0.1:1", "--id", "-1"], "--id must be >= 0, got -1"),
    (
      ["worker", "--connect", "tcp://127.0.0.1:1", "--heartbeat-ms", "-10"],
      "--heartbeat-ms must be >= 10"
    ),
    (
      ["coordinator", "--connect", "tcp://127.0.0.1:1", "--every", "-1"],
      "--every must be >= 1, got -1"
    ),
    (
      ["status", "--connect", "tcp://127.0.0.1:1", "--timeout-ms", "-1"], "--timeout-ms must be > 0"
    ),
    (["status", "--connect", "tcp://127.0.0.1:1", "--count", "-1"], "--count must be >= 1"),
    (
      ["audit", "--connect", "tcp://127.0.0.1:1", "--max-gradients", "-1"],
      "--max-gradients must be >= 1"
    ),
    (
      ["data", "generate", "--rows", "5", "--out", "-", "--noise", "-1"],
      "noise must be a finite number >= 0"
    ),
    (
      ["data", "generate", "--rows", "5", "--out", "-", "--seed", "-1"],
      "--seed must be >= 0, got -1"
    ),
    (["gradcheck", "--eps", "-1e-4"], "--eps must be > 0"),
  ]

  @Test(arguments: cases)
  func outOfRangeNegativeGetsItsRange(arguments: [String], expected: String) throws {
    let separate = try pstrain(arguments)
    #expect(separate.status != 0)
    #expect(separate.errors.contains(expected), "\(arguments): \(separate.errors)")
    #expect(!separate.errors.contains("Missing value"))
    #expect(separate.errors.hasPrefix("pstrain: "))
    // The same value written --flag=-1 gets the same answer.
    let flag = arguments.count - 2
    let joined = try pstrain(
      Array(arguments.prefix(flag)) + ["\(arguments[flag])=\(arguments[flag + 1])"])
    #expect(joined.errors == separate.errors)
    #expect(joined.status == separate.status)
  }

  /// The tutorial's `gradcheck --x -1` works and equals `--x=-1`.
  @Test func negativeValuesAreAccepted() throws {
    let separate = try pstrain(["gradcheck", "--x", "-1", "--label", "-0.5"])
    let joined = try pstrain(["gradcheck", "--x=-1", "--label=-0.5"])
    #expect(separate.status == 0, "\(separate.errors)")
    #expect(separate.output.hasPrefix("loss "))
    #expect(separate.output == joined.output)
    let positive = try pstrain(["gradcheck", "--x", "1", "--label", "-0.5"])
    #expect(positive.output != separate.output)
  }

  /// `--` still ends the options: what follows is not rewritten.
  @Test func aMissingValueIsStillMissing() throws {
    let missing = try pstrain(["train", "--lr"])
    #expect(missing.status == 64)
    #expect(missing.errors.hasPrefix("pstrain: Missing value for '--lr <lr>'"))
  }
}

/// Config file and environment mistakes are named where they are (issue 9, item 4).
@Suite struct ConfigurationMistakeTests {
  @Test func unknownKeyNamesFileLineAndNearestKey() throws {
    let (run, path) = try pstrain(
      ["server", "--bind", "tcp://127.0.0.1:*"],
      config: "# settings\n[server]\nlr = 0.1\nepoch = 5\n")
    #expect(run.status == 64)
    #expect(
      run.errors
        == "pstrain: config file \(path), line 4: unknown key \"epoch\" in [server] (no flag --epoch in pstrain server); did you mean \"epochs\"?\n"
    )
  }

  @Test func unknownKeyInCommonNamesNearestKeyOfAnyCommand() throws {
    let (run, path) = try pstrain(["gradcheck"], config: "lr = 0.1\nbatchsize = 4\n")
    #expect(run.status == 64)
    #expect(
      run.errors.contains("config file \(path), line 2: unknown key \"batchsize\" in [common]")
    )
    #expect(run.errors.contains("did you mean \"batch-size\"?"))
    #expect(run.output.isEmpty)
  }

  @Test func unknownSectionNamesFileLineAndNearestSection() throws {
    let (run, path) = try pstrain(
      ["gradcheck"], config: "[common]\nlr = 0.1\n\n[trian]\nepochs = 5\n")
    #expect(run.status == 64)
    #expect(
      run.errors.hasPrefix(
        "pstrain: config file \(path), line 4: unknown section [trian]; did you mean [train]?")
    )
  }

  /// A key another command takes is fine in [common] and in that command's section,
  /// and a subcommand's section (`[data generate]`) applies to it.
  @Test func keysOfOtherCommandsAndSubcommandSectionsAreValid() throws {
    let (run, _) = try pstrain(
      ["data", "generate", "--out", "-"],
      config: "[common]\nlr = 0.1\nconnect = tcp://127.0.0.1:1\n[data generate]\nrows = 3\n")
    #expect(run.status == 0, "\(run.errors)")
    #expect(run.output.split(separator: "\n").count == 4)
  }

  @Test func badValueFromFileNamesFileAndLine() throws {
    let (run, path) = try pstrain(
      ["server", "--bind", "tcp://127.0.0.1:*"], config: "[common]\nlr = abc\n")
    #expect(run.status == 64)
    #expect(
      run.errors.hasPrefix("pstrain: --lr comes from config file \(path), line 2 (lr = abc): ")
    )
    #expect(!run.errors.contains("Usage:"))
  }

  @Test func badValueFromEnvironmentNamesTheVariable() throws {
    let run = try pstrain(
      ["server", "--bind", "tcp://127.0.0.1:*"], environment: ["PSTRAIN_SERVER_LR": "abc"])
    #expect(run.status == 64)
    #expect(
      run.errors.hasPrefix(
        "pstrain: --lr comes from the environment variable PSTRAIN_SERVER_LR=abc: "))
    let range = try pstrain(
      ["server", "--bind", "tcp://127.0.0.1:*"], environment: ["PSTRAIN_LR": "-1"])
    #expect(
      range.errors
        == "pstrain: --lr comes from the environment variable PSTRAIN_LR=-1: --lr must be a finite number > 0\n"
    )
    let flag = try pstrain(
      ["status", "--connect", "tcp://127.0.0.1:1"], environment: ["PSTRAIN_STATUS_JSON": "maybe"])
    #expect(flag.status == 64)
    #expect(flag.errors.contains("the environment variable PSTRAIN_STATUS_JSON=maybe"))
  }
}

/// One error prefix, usage only for usage mistakes, endpoints checked up front
/// (issue 9, item 10).
@Suite struct ErrorReportingTests {
  @Test func parserErrorsUseThePstrainPrefix() throws {
    for arguments in [["train", "--bogus"], ["train", "--lr"], ["train", "--mode", "fast"]] {
      let run = try pstrain(arguments)
      #expect(run.status == 64)
      #expect(run.errors.hasPrefix("pstrain: "), "\(arguments): \(run.errors)")
      #expect(!run.errors.contains("Error:"))
    }
  }

  @Test func aFileErrorShowsNoUsage() throws {
    let missing = "/nonexistent-\(UUID().uuidString).csv"
    for arguments in [
      ["train", "--data", missing],
      ["worker", "--connect", "tcp://127.0.0.1:1", "--data", missing],
    ] {
      let run = try pstrain(arguments)
      #expect(run.status != 0)
      #expect(run.errors.hasPrefix("pstrain: cannot read data file \(missing)"), "\(run.errors)")
      #expect(!run.errors.contains("Usage:"))
    }
  }

  @Test(arguments: [
    (["status", "--connect", "tcp://127.0.0.1"], "--connect tcp://127.0.0.1 has no port"),
    (["status", "--connect", "tcp://127.0.0.1:99999"], "the port must be 1...65535"),
    (["status", "--connect", "tcp://127.0.0.1:5555,tcp://:5556"], "has no host"),
    (["status", "--connect", "udp://127.0.0.1:5555"], "unknown transport \"udp\""),
    (["server", "--bind", "tcp://127.0.0.1"], "--bind tcp://127.0.0.1 has no port"),
  ])
  func badEndpointsGetASentence(arguments: [String], expected: String) throws {
    let run = try pstrain(arguments)
    #expect(run.status == 64)
    #expect(run.errors.hasPrefix("pstrain: "))
    #expect(run.errors.contains(expected), "\(run.errors)")
  }
}

/// The worker, `status` and `checkpoint show` count epochs the same way, from 1, and
/// never past the last (issue 9, item 10).
@Suite(.serialized) struct EpochCountTests {
  @Test func aShardWorkerNeverPrintsAnEpochPastItsLast() throws {
    let (server, endpoint) = try startServer()
    defer { server.stop() }
    let worker = try Launched(["worker", "--connect", endpoint, "--shard", "0/1", "--epochs", "3"])
    defer { worker.stop() }
    #expect(try worker.wait(within: 60) == 0, "\(worker.errors)")
    let epochLines = worker.lines.filter { $0.hasPrefix("worker 0: epoch ") }
    #expect(!epochLines.isEmpty)
    #expect(!worker.output.contains("epoch 4"))
    #expect(epochLines.last?.hasPrefix("worker 0: epoch 3 of 3 (done), ") == true, "\(epochLines)")
  }

  @Test func checkpointShowAndStatusAgreeOnTheEpoch() throws {
    let epochs = 3
    let data = try generateData(rows: 20, seed: 1, noise: 0)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-epochs-\(UUID().uuidString)"
    ).path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let (server, endpoint) = try startServer([
      "--epochs", "\(epochs)", "--chunk-rows", "5", "--checkpoint-dir", directory,
      "--checkpoint-every", "7",
    ])
    defer { server.stop() }
    let worker = try Launched(["worker", "--connect", endpoint, "--data", data])
    defer { worker.stop() }
    #expect(try worker.wait(within: 60) == 0, "\(worker.errors)")
    #expect(!worker.output.contains("epoch \(epochs + 1)"))
    if server.process.isRunning {
      let status = try runPstrain(["status", "--connect", endpoint], within: 30)
      #expect(status.output.contains("epochs:    3 of 3 (done), "), "\(status.output)")
      _ = try server.terminate()
    }
    let files = try FileManager.default.contentsOfDirectory(atPath: directory)
      .filter { $0.hasSuffix(".pstckpt") }
    #expect(files.count >= 2)
    for name in files {
      let path = directory + "/" + name
      let json = try lastJSONObject(try runPstrain(["checkpoint", "show", "--json", path]).output)
      let epoch = try #require(json["epoch"] as? Int)
      let text = try runPstrain(["checkpoint", "show", path]).output
      let expected = epoch >= epochs ? "3 of 3 (done)" : "\(epoch + 1) of 3"
      #expect(text.contains("  epoch     \(expected), "), "\(name): epoch \(epoch): \(text)")
    }
  }
}
