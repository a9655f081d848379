import ArgumentParser
import Foundation
import Roles
import SystemCalls
import TrainingMath
import WireProtocol

extension TrainCommand {
  /// `pstrain train` on libsvm data: server shards holding a sparse model's keyed
  /// table, workers on fixed shards of the rows pulling and pushing only the
  /// keys their batches touch, and a coordinator that evaluates (test log loss
  /// and AUC) and audits. Ends with a summary, or with `--json` one object.
  func runSparse() throws {
    guard let keyed = try training.keyedModel() else {
      throw Failure(
        message:
          "\(work.data!) is libsvm data, but --model \(training.model) is dense; pick --model sparse-logreg or fm:K"
      )
    }
    guard !leased else {
      throw Failure(message: "sparse models train on fixed shards; drop --leased")
    }
    guard saveModel == nil, plot == nil else {
      throw Failure(
        message: "--save-model and --plot are for dense models (not yet for sparse ones)")
    }
    let dataset = try loadSparseDataset(work.data!)
    let testSet = try testData.map(loadSparseDataset)
    let cluster = LocalCluster(executable: currentExecutablePath(), metrics: metrics.first)
    defer { cluster.stopAll() }
    let started = Date()
    let (servers, endpoints) = try cluster.startServers(
      ["server", "--bind", "tcp://127.0.0.1:*", "--workers", "\(workers)"] + training.arguments
        + tensorBoard.arguments,
      shards: serverShards)
    let endpoint = endpoints.joined(separator: ",")
    progress(
      "train: \(keyed.model) on \(dataset.count) rows (\(dataset.nonzeroCount) nonzeros), \(serverShards) server shard\(serverShards == 1 ? "" : "s") at \(endpoint), \(workers) workers, \(work.epochs) epochs, \(keyed.optimizer)"
    )
    reportMetricsPorts(shards: serverShards)
    let batchesPerEpoch = (0..<workers).reduce(0) { total, index in
      let rows = (try! Shard(index: index, count: workers)).rows(of: dataset.count).count
      return total + (rows + work.batchSize - 1) / work.batchSize
    }
    let expectedVersions = batchesPerEpoch * work.epochs
    let every = evalEvery ?? UInt64(max(1, expectedVersions / 20))
    let coordinator = try cluster.start(
      "coordinator",
      ["coordinator", "--connect", endpoint, "--json"]
        + (auditEvery.map { ["--every", "\($0)"] } ?? []) + budget.arguments + audit.arguments
        + work.dataArguments
        + (testData.map { ["--test-data", $0, "--eval-every", "\(every)"] } ?? [])
        + tensorBoard.arguments)
    guard
      coordinator.waitForLine(
        timeoutMilliseconds: 20_000, matching: { $0.contains("\"type\":\"subscribed\"") }) != nil
    else {
      throw Failure(message: "the coordinator did not start: \(coordinator.errorTail())")
    }
    var workerProcesses: [ChildProcess] = []
    let trainingStarted = Date()
    for index in 0..<workers {
      var arguments =
        ["worker", "--connect", endpoint, "--id", "\(index)", "--shard", "\(index)/\(workers)"]
        + work.arguments
      if index == faultWorker, let fault { arguments += ["--fault", fault] }
      workerProcesses.append(try cluster.start("worker \(index)", arguments))
    }
    let (context, connection) = try ConnectOptions.parse(["--connect", endpoint]).open()
    defer { withExtendedLifetime(context) {} }
    let deadline = started.addingTimeInterval(Double(timeoutS))
    var problems: [String] = []
    var interrupted = false
    var lastProgress = Date()
    while workerProcesses.contains(where: \.isRunning) {
      if ShutdownSignal.isRequested {
        interrupted = true
        break
      }
      if Date() > deadline {
        problems.append("timed out after \(timeoutS) s with workers still running")
        break
      }
      if let dead = servers.first(where: { !$0.isRunning }) {
        throw Failure(message: "\(dead.name) exited: \(dead.errorTail())")
      }
      if Date().timeIntervalSince(lastProgress) >= 1,
        let status = try? connection.status(timeoutMilliseconds: 2000)
      {
        lastProgress = Date()
        progress(
          "train: version \(status.version) of about \(expectedVersions), \(status.workers.count) workers training"
            + (SparseEvaluationLine.latest(in: coordinator.outputLines).map {
              ", \($0.text) at version \($0.version)"
            } ?? ""))
      }
      Sleep.milliseconds(20)
    }
    let trainingSeconds = Date().timeIntervalSince(trainingStarted)
    if interrupted {
      progress("train: interrupted; stopping the cluster")
      LocalCluster.stop(workerProcesses + [coordinator], by: Date().addingTimeInterval(0.5))
    }
    var diverged = false
    for worker in workerProcesses {
      let code = worker.wait(timeoutMilliseconds: 1000)
      guard !interrupted else { continue }
      if code == WorkerCommand.divergedStatus { diverged = true }
      if code != 0 && code != WorkerCommand.quarantinedStatus {
        problems.append(
          "\(worker.name) exited with status \(code.map(String.init) ?? "unknown"): \(worker.errorTail())"
        )
      }
    }
    // A stop signal must not cut these requests short: they read what was reached.
    func finalStatus(of link: any ServerLink, timeoutMilliseconds: Int) throws -> ServerStatus {
      let reply = try link.request(
        .statusRequest, timeoutMilliseconds: timeoutMilliseconds, what: "status",
        graceAfterStopMilliseconds: nil)
      guard case .status(let status) = reply else {
        throw RoleError.unexpectedReply(expected: "status", got: "\(reply.type)")
      }
      return status
    }
    let status = try finalStatus(of: connection, timeoutMilliseconds: interrupted ? 2000 : 10_000)
    // Each shard's rows, for the balance of the hashed key ownership.
    let shardRows: [UInt64] = endpoints.compactMap { shardEndpoint in
      guard
        let (shardContext, link) = try? ConnectOptions.parse(["--connect", shardEndpoint]).open()
      else { return nil }
      defer { withExtendedLifetime(shardContext) {} }
      return (try? finalStatus(of: link, timeoutMilliseconds: 2000))?.keyedTable?.rowsTouched
    }
    let meanRows = shardRows.isEmpty ? 0 : Double(shardRows.reduce(0, +)) / Double(shardRows.count)
    let balance = meanRows > 0 ? Double(shardRows.max() ?? 0) / meanRows : nil
    let table = status.keyedTable
    let bytesPerExample = table.flatMap(StatusCommand.bytesPerExample)
    let coordinatorExit = interrupted ? coordinator.exitStatus : coordinator.stop()
    let evaluation = SparseEvaluationLine.latest(in: coordinator.outputLines)
    if testSet != nil, evaluation?.final != true, !interrupted {
      problems.append(
        "the coordinator made no final evaluation on --test-data (status \(coordinatorExit.map(String.init) ?? "?")): \(coordinator.errorTail())"
      )
    }
    let summaryLine = coordinator.outputLines.last(where: { $0.contains("\"type\":\"summary\"") })
    struct SummaryLine: Decodable { var audits: AuditSummary }
    let audits = summaryLine.flatMap {
      try? JSONDecoder().decode(SummaryLine.self, from: Data($0.utf8)).audits
    }
    if let audits, audits.failed > 0 {
      problems.append("\(audits.failed) audits failed (workers \(audits.failedWorkers))")
    }
    for server in servers where server.stop() != 0 && !interrupted {
      problems.append("\(server.name) did not stop cleanly: \(server.errorTail())")
    }
    // The rows of the pushes applied (every worker's rows of every epoch, unless stopped early).
    let examples = Double(table?.examples ?? UInt64(work.epochs * dataset.count))
    let examplesPerSecond = trainingSeconds > 0 ? examples / trainingSeconds : 0
    if json {
      var members = [
        "\"model\":\"\(keyed.model.commandLineName)\"", "\"hash_bits\":\(keyed.model.hashBits)",
        "\"version\":\(status.version)", "\"gradients_applied\":\(status.gradientsApplied)",
        "\"rejected\":\(status.rejected)", "\"examples\":\(Int(examples))",
        "\"examples_per_second\":\(JSON.number(examplesPerSecond))",
        "\"training_seconds\":\(JSON.number(trainingSeconds))",
        "\"seconds\":\(JSON.number(Date().timeIntervalSince(started)))",
        "\"server_shards\":\(serverShards)", "\"workers\":\(workers)",
      ]
      if let table {
        members += [
          "\"rows_touched\":\(table.rowsTouched)", "\"row_bytes\":\(table.rowBytes)",
          "\"bytes_allocated\":\(table.bytesAllocated)",
          "\"bytes_per_example\":\(bytesPerExample.map(JSON.number) ?? "null")",
          "\"key_cache_hits\":\(table.keyCacheHits)",
          "\"key_cache_misses\":\(table.keyCacheMisses)",
        ]
      }
      members += [
        "\"shard_rows\":[\(shardRows.map(String.init).joined(separator: ","))]",
        "\"busiest_shard_ratio\":\(balance.map(JSON.number) ?? "null")",
      ]
      if let evaluation {
        members += [
          "\"test_logloss\":\(JSON.number(evaluation.loss))",
          "\"test_auc\":\(evaluation.auc.map(JSON.number) ?? "null")",
          "\"test_accuracy\":\(evaluation.accuracy.map(JSON.number) ?? "null")",
          "\"test_version\":\(evaluation.version)",
        ]
      }
      if let audits {
        members += ["\"audits\":\(audits.count)", "\"audits_failed\":\(audits.failed)"]
      }
      members += [
        "\"interrupted\":\(interrupted)", "\"diverged\":\(diverged)",
        "\"problems\":[\(problems.map(JSON.string).joined(separator: ","))]",
      ]
      print("{" + members.joined(separator: ",") + "}")
    } else {
      print(
        "trained \(keyed.model): version \(status.version), \(status.gradientsApplied) gradients applied, \(status.rejected) rejected, \(Int(examplesPerSecond)) examples/s"
      )
      if let table {
        print(
          "table: \(table.rowsTouched) rows over \(shardRows.count) shard\(shardRows.count == 1 ? "" : "s")"
            + (balance.map { " (busiest \(String(format: "%.3f", $0))x the mean)" } ?? "")
            + ", \(String(format: "%.1f", Double(table.bytesAllocated) / 1e6)) MB allocated for \(String(format: "%.1f", Double(table.rowBytes) / 1e6)) MB of rows"
            + (bytesPerExample.map { ", \(Int($0.rounded())) bytes on the wire per example" } ?? "")
        )
      }
      if let evaluation { print("test: \(evaluation.text) (version \(evaluation.version))") }
      if let audits { print("audits: \(audits.count), \(audits.failuresText)") }
    }
    for problem in problems { printError(problem) }
    if interrupted {
      let signal = ShutdownSignal.signalNumber
      throw ExitCode(signal > 0 ? 128 + signal : Self.interruptedStatus)
    }
    if diverged { throw ExitCode(Self.divergedStatus) }
    if !problems.isEmpty { throw ExitCode(1) }
  }
}

/// A coordinator's evaluation JSON line of a sparse model: test log loss, accuracy and AUC.
struct SparseEvaluationLine: Decodable {
  var version: UInt64
  var rows: Int
  var loss: Double
  var accuracy: Double?
  var auc: Double?
  var final: Bool

  enum CodingKeys: String, CodingKey {
    case version, rows, final
    case loss = "test_loss"
    case accuracy = "test_accuracy"
    case auc = "test_auc"
  }

  /// "test log loss 0.41, AUC 0.8123, accuracy 81.2%".
  var text: String {
    "test log loss \(String(format: "%.4f", loss))"
      + (auc.map { ", AUC \(String(format: "%.4f", $0))" } ?? "")
      + (accuracy.map { ", accuracy \(String(format: "%.1f%%", $0 * 100))" } ?? "")
  }

  /// The latest evaluation among a coordinator's output lines.
  static func latest(in lines: [String]) -> SparseEvaluationLine? {
    for line in lines.reversed() where line.contains("\"type\":\"evaluation\"") {
      if let parsed = try? JSONDecoder().decode(Self.self, from: Data(line.utf8)) { return parsed }
    }
    return nil
  }
}
