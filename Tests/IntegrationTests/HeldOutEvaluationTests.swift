import Foundation
import Testing

/// Writes `text` to a temporary CSV file and returns its path.
private func writeCSV(_ text: String) throws -> String {
  let path = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-misfit-\(UUID().uuidString).csv"
  ).path
  try text.write(toFile: path, atomically: true, encoding: .utf8)
  return path
}

/// Evaluation on held-out data, end to end (issue 11, item 6): the coordinator evaluates
/// the server's weights on `--test-data`, reports to the server, and `train` summarises.
@Suite(.serialized) struct HeldOutEvaluationTests {
  /// On fixed shards and with leased rows (whose server counts rows, not gradients).
  @Test(arguments: [false, true])
  func trainReportsTheTestLossItsHistoryAndTheThroughput(leased: Bool) throws {
    let data = try generateData(rows: 200, seed: 7, noise: 0.1)
    let test = try generateData(rows: 60, seed: 8, noise: 0.1)
    defer { for path in [data, test] { try? FileManager.default.removeItem(atPath: path) } }
    // Batches of 7 do not divide the 100-row shards: each epoch ends with a short batch.
    let run = try runPstrain(
      [
        "train", "--data", data, "--test-data", test, "--epochs", "30", "--batch-size", "7",
        "--json",
      ] + (leased ? ["--leased"] : []))
    #expect(run.status == 0, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    let testLoss = try #require(summary["test_loss"] as? Double)
    #expect(testLoss.isFinite && testLoss >= 0)
    // The chain is a regression model: no accuracy, on either data.
    #expect(summary["test_accuracy"] is NSNull)
    #expect(summary["train_accuracy"] is NSNull)

    let history = try #require(summary["history"] as? [[String: Any]])
    #expect(!history.isEmpty)
    let versions = history.compactMap { $0["version"] as? Int }
    #expect(versions.count == history.count)
    #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }, "\(versions)")
    // The last evaluation is of the final weights, and is the summary's.
    #expect(versions.last == summary["updates"] as? Int)
    #expect(history.last?["test_loss"] as? Double == testLoss)
    #expect(history.allSatisfy { ($0["test_loss"] as? Double)?.isFinite == true })
    // The final version's training loss is known: the summary measured it.
    #expect(history.last?["train_loss"] as? Double == summary["loss"] as? Double)
    #expect(history.allSatisfy { $0["train_loss"] is Double || $0["train_loss"] is NSNull })

    // Every row of every epoch was applied: 6,000 samples in the training time.
    let samplesPerSecond = try #require(summary["samples_per_s"] as? Double)
    let seconds = try #require(summary["training_seconds"] as? Double)
    #expect(samplesPerSecond > 0)
    #expect(abs(samplesPerSecond * seconds - 6000) < 1e-6 * 6000)
    if !leased { #expect(summary["gradients_applied"] as? Int == 2 * 15 * 30) }
  }

  /// A softmax classifier: accuracy on the training data and on the held-out rows.
  @Test func aClassifiersAccuracyIsReportedOnBothData() throws {
    let all = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-classes-\(UUID().uuidString).csv"
    ).path
    let generated = try runPstrain([
      "data", "generate", "--rows", "400", "--seed", "1", "--classes", "3", "--features", "4",
      "--out", all,
    ])
    #expect(generated.status == 0, "\(generated.errors)")
    // The first 300 rows to train on, the last 100 held out, each file with the header.
    let lines = try String(contentsOfFile: all, encoding: .utf8).split(separator: "\n")
    let data = try writeCSV((lines.prefix(301)).joined(separator: "\n") + "\n")
    let test = try writeCSV(([lines[0]] + lines.suffix(100)).joined(separator: "\n") + "\n")
    defer { for path in [all, data, test] { try? FileManager.default.removeItem(atPath: path) } }
    let run = try runPstrain([
      "train", "--model", "softmax", "--data", data, "--test-data", test, "--epochs", "20",
      "--lr", "0.1", "--batch-size", "10", "--json",
    ])
    #expect(run.status == 0, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    let trainAccuracy = try #require(summary["train_accuracy"] as? Double)
    let testAccuracy = try #require(summary["test_accuracy"] as? Double)
    // Three classes: chance is a third; the clusters are easy for a linear model.
    #expect(trainAccuracy > 0.6 && trainAccuracy <= 1)
    #expect(testAccuracy > 0.6 && testAccuracy <= 1)
    let history = try #require(summary["history"] as? [[String: Any]])
    #expect(!history.isEmpty)
    #expect(
      history.allSatisfy { ($0["test_accuracy"] as? Double).map { (0...1).contains($0) } == true })
    #expect(history.last?["test_accuracy"] as? Double == testAccuracy)
  }

  @Test func statusOfARunningServerShowsTheTestLoss() throws {
    let data = try generateData(rows: 200, seed: 7, noise: 0.1)
    let test = try generateData(rows: 60, seed: 8, noise: 0.1)
    defer { for path in [data, test] { try? FileManager.default.removeItem(atPath: path) } }
    let (server, endpoint) = try startServer(["--workers", "1", "--metrics", "127.0.0.1:0"])
    defer { server.stop() }
    let coordinator = try Launched([
      "coordinator", "--connect", endpoint, "--data", data, "--test-data", test,
      "--eval-every", "50", "--json",
    ])
    defer { coordinator.stop() }
    _ = try coordinator.line(startingWith: "{\"type\":\"subscribed\"")
    // A worker that trains until it is stopped.
    let worker = try Launched([
      "worker", "--connect", endpoint, "--shard", "0/1", "--data", data, "--epochs", "1000000",
    ])
    defer { worker.stop() }
    var evaluation: [String: Any] = [:]
    try waitFor("status to show an evaluation past version 0", within: 60) {
      evaluation = try serverStatus(endpoint)["last_evaluation"] as? [String: Any] ?? [:]
      return (evaluation["version"] as? Int ?? 0) > 0
    }
    let loss = try #require(evaluation["test_loss"] as? Double)
    #expect(loss.isFinite && loss >= 0)
    #expect(evaluation["rows"] as? Int == 60)
    #expect(evaluation["test_accuracy"] is NSNull)
    let text = try runPstrain(["status", "--connect", endpoint], within: 30)
    #expect(text.status == 0)
    #expect(text.output.contains("test:      loss "), "\(text.output)")
    #expect(text.output.contains("over 60 held-out rows at version "))
    // The server's gauges: a test loss, and no accuracy for a regression model.
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") {
      let url = String(try server.line(startingWith: "metrics ").dropFirst("metrics ".count))
      let metrics = try runTool("/usr/bin/curl", ["-s", "--max-time", "5", url], seconds: 30).output
      let gauge = metrics.split(separator: "\n").first { $0.hasPrefix("pstrain_test_loss ") }
      #expect(
        gauge.flatMap { Double($0.split(separator: " ").last!) }?.isFinite == true, "\(metrics)")
      #expect(!metrics.contains("pstrain_test_accuracy "), "\(metrics)")
    }

    worker.stop()
    #expect(try coordinator.terminate() == 0, "\(coordinator.errors)")
    // Its evaluations as JSON lines, the last of the final weights.
    let lines = coordinator.lines.filter { $0.hasPrefix("{\"type\":\"evaluation\"") }
    #expect(lines.count >= 2)
    let last = try lastJSONObject(try #require(lines.last))
    #expect(last["final"] as? Bool == true)
    #expect(lines.dropLast().allSatisfy { $0.contains("\"final\":false") })
  }

  @Test func testDataThatDoesNotFitTheModelIsRefusedAtStartUp() throws {
    let misfit = try writeCSV("a,b,label\n1,2,3\n4,5,6\n")
    defer { try? FileManager.default.removeItem(atPath: misfit) }
    let (server, endpoint) = try startServer()
    defer { server.stop() }
    let coordinator = try runPstrain(
      ["coordinator", "--connect", endpoint, "--test-data", misfit], within: 30)
    #expect(coordinator.status == 1)
    #expect(
      coordinator.errors.contains("\(misfit) has 2 features, the server's model chain takes 1"),
      "\(coordinator.errors)")
    // train checks before it starts anything.
    let train = try runPstrain(["train", "--test-data", misfit, "--json"], within: 30)
    #expect(train.status == 1)
    #expect(train.errors.contains("has 2 features"), "\(train.errors)")
    #expect(!train.errors.contains("server at"))
    let noFile = try runPstrain(["train", "--eval-every", "5"], within: 30)
    #expect(noFile.status == 64)
    #expect(noFile.errors.contains("--eval-every needs --test-data"), "\(noFile.errors)")
  }
}
