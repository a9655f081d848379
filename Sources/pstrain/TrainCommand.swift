import ArgumentParser
import Foundation
import Roles
import TrainingMath
import WireProtocol

/// `pstrain train`: a whole cluster on loopback, as separate OS processes.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train on a local cluster: a server, N workers and a coordinator on loopback.",
    discussion: """
      Each role runs as its own process of this executable, talking ZeroMQ over
      tcp://127.0.0.1 on a free port. The defaults reproduce the tutorial: its two samples,
      initial weights (0.2333, -0.233, -0.52133) and learning rate 0.05. Exits non-zero if a
      process failed or an audit found a wrong gradient. --json ends stdout with one JSON
      object; progress then goes to stderr.
      """)

  @Option(help: "Number of worker processes.")
  var workers: Int = 2

  @OptionGroup var training: ServerTrainingOptions

  @OptionGroup var work: WorkerTrainingOptions

  @Option(help: "The coordinator audits every N versions.")
  var auditEvery: UInt64 = 10

  @OptionGroup var audit: AuditToleranceOptions

  @Option(
    help: "Inject a gradient fault into worker 0 (scale=F, flip=K, stale=K), to see audits fail.")
  var fault: String?

  @Option(help: "Split the parameters over this many server processes.")
  var serverShards: Int = 1

  @Flag(help: "Let the server lease rows per epoch instead of giving workers fixed shards.")
  var leased = false

  @Option(help: "Rows per lease, with --leased.")
  var chunkRows: Int = 64

  @Option(help: "Write loss and audit-error curves over updates to this SVG file.")
  var plot: String?

  @Option(help: "Give up after this many seconds.")
  var timeoutS: Int = 600

  @Flag(help: "End stdout with one JSON object.")
  var json = false

  func validate() throws {
    guard (1...256).contains(workers) else { throw ValidationError("--workers must be 1...256") }
    guard work.epochs >= 1 else { throw ValidationError("--epochs must be >= 1") }
    guard chunkRows >= 1 else { throw ValidationError("--chunk-rows must be >= 1") }
    guard work.pipeline == 1 || training.mode == .async else {
      throw ValidationError("--pipeline needs --mode async: sync and ssp answer one push at a time")
    }
    guard (1...64).contains(serverShards) else {
      throw ValidationError("--server-shards must be 1...64")
    }
    guard serverShards == 1 || !leased else {
      throw ValidationError("--leased needs a single server; drop --server-shards")
    }
    guard auditEvery >= 1 else { throw ValidationError("--audit-every must be >= 1") }
    guard timeoutS >= 1 else { throw ValidationError("--timeout-s must be >= 1") }
    try validateFault(fault)
  }

  func run() throws {
    try runReportingErrors {
      let dataset = try loadDataset(work.data)
      let cluster = LocalCluster(executable: currentExecutablePath())
      defer { cluster.stopAll() }
      let outcome = try train(dataset: dataset, cluster: cluster)
      report(outcome, dataset: dataset)
      if !outcome.problems.isEmpty { throw ExitCode(1) }
    }
  }

  /// Everything a run ends with.
  struct Outcome {
    var status: ServerStatus
    var audits: AuditSummary
    var problems: [String]
    var endpoint: String
    var seconds: Double
  }

  /// The coordinator's summary, read from its JSON line.
  struct AuditSummary: Decodable {
    var count: Int
    var failed: Int
    var inconclusive: Int
    var maximumRelativeError: Double?
    var failedWorkers: [Int]

    enum CodingKeys: String, CodingKey {
      case count, failed, inconclusive
      case maximumRelativeError = "max_relative_error"
      case failedWorkers = "failed_workers"
    }
  }

  private func progress(_ line: String) {
    if json { printToStandardError(line) } else { print(line) }
  }

  private func train(dataset: Dataset, cluster: LocalCluster) throws -> Outcome {
    let started = Date()
    let serverArguments =
      [
        "server", "--bind", "tcp://127.0.0.1:*", "--workers", "\(workers)",
      ] + training.arguments
      // --stay: the run reads the server's status after the workers are done, then stops it.
      + (leased ? ["--epochs", "\(work.epochs)", "--chunk-rows", "\(chunkRows)", "--stay"] : [])
    var servers: [ChildProcess] = []
    var endpoints: [String] = []
    for index in 0..<serverShards {
      let server = try cluster.start(
        "server \(index)", serverArguments + ["--shard", "\(index)/\(serverShards)"])
      guard
        let listening = server.waitForLine(
          timeoutMilliseconds: 20_000, matching: { $0.hasPrefix("listening ") })
      else {
        throw Failure(message: "server \(index) did not start: \(server.errorTail())")
      }
      servers.append(server)
      endpoints.append(String(listening.dropFirst("listening ".count)))
    }
    let endpoint = endpoints.joined(separator: ",")
    progress(
      "train: server at \(endpoint), \(training.mode) mode, \(workers) workers, \(work.epochs) epochs, lr \(training.lr)"
    )

    let coordinator = try cluster.start(
      "coordinator",
      [
        "coordinator", "--connect", endpoint, "--every", "\(auditEvery)", "--json",
      ] + audit.arguments)
    guard
      coordinator.waitForLine(
        timeoutMilliseconds: 20_000, matching: { $0.contains("\"type\":\"subscribed\"") })
        != nil
    else {
      throw Failure(message: "the coordinator did not start: \(coordinator.errorTail())")
    }

    var workerProcesses: [ChildProcess] = []
    for index in 0..<workers {
      var arguments = ["worker", "--connect", endpoint, "--id", "\(index)"] + work.arguments
      if !leased { arguments += ["--shard", "\(index)/\(workers)"] }
      if index == 0, let fault { arguments += ["--fault", fault] }
      workerProcesses.append(try cluster.start("worker \(index)", arguments))
    }

    let (context, connection) = try ConnectOptions.parse(["--connect", endpoint]).open()
    defer { withExtendedLifetime(context) {} }
    let objective = Objective(model: ChainModel(layers: training.layers))
    let deadline = started.addingTimeInterval(Double(timeoutS))
    var problems: [String] = []
    var lastProgress = Date.distantPast
    var lossCurve: [(Double, Double)] = []
    // A bar that redraws in place when a person watches; plain lines for pipes and logs.
    let bar = !json && isatty(STDOUT_FILENO) == 1
    let expectedGradients = Double(work.epochs * dataset.count)
    while workerProcesses.contains(where: \.isRunning) {
      if ShutdownSignal.isRequested { throw Failure(message: "interrupted; stopping the cluster") }
      if Date() > deadline {
        problems.append("timed out after \(timeoutS) s with workers still running")
        break
      }
      if let dead = servers.first(where: { !$0.isRunning }) {
        throw Failure(message: "\(dead.name) exited: \(dead.errorTail())")
      }
      let interval = plot == nil ? 0.5 : (bar ? 0.1 : 0.025)
      if Date().timeIntervalSince(lastProgress) >= interval {
        let reportNow = Date().timeIntervalSince(lastProgress) >= 0.5 || plot == nil
        lastProgress = Date()
        if let status = try? connection.status(timeoutMilliseconds: 2000) {
          let loss = objective.loss(weights: status.parameters.values, samples: dataset.samples)
          lossCurve.append((Double(status.version), loss))
          if bar {
            let fraction = min(1, Double(status.gradientsApplied) / max(1, expectedGradients))
            let filled = Int(fraction * 30)
            print(
              "\rtrain [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 30 - filled))] \(Int(fraction * 100))%  version \(status.version)  loss \(String(format: "%.3e", loss))   ",
              terminator: "")
            fflush(nil)  // all output streams: the bar has no newline
          } else if reportNow {
            progress(
              "train: version \(status.version), \(status.workers.count) workers training, loss \(loss)"
            )
          }
        }
      }
      usleep(10_000)
    }
    if bar { print("") }
    for worker in workerProcesses {
      let code = worker.wait(timeoutMilliseconds: 1000)
      if code != 0 {
        problems.append(
          "\(worker.name) exited with status \(code.map(String.init) ?? "unknown"): \(worker.errorTail())"
        )
      }
    }
    let status = try connection.status(timeoutMilliseconds: 10_000)

    let coordinatorExit = coordinator.stop()
    if let plot {
      lossCurve.append(
        (
          Double(status.version),
          objective.loss(weights: status.parameters.values, samples: dataset.samples)
        ))
      try writePlot(to: plot, loss: lossCurve, auditLines: coordinator.outputLines)
    }
    let summaryLine = coordinator.outputLines.last(where: { $0.contains("\"type\":\"summary\"") })
    struct SummaryLine: Decodable { var audits: AuditSummary }
    guard let summaryLine,
      let summary = try? JSONDecoder().decode(SummaryLine.self, from: Data(summaryLine.utf8))
    else {
      throw Failure(
        message:
          "the coordinator gave no summary (status \(coordinatorExit.map(String.init) ?? "?")): \(coordinator.errorTail())"
      )
    }
    if summary.audits.failed > 0 {
      problems.append(
        "\(summary.audits.failed) audits failed (workers \(summary.audits.failedWorkers))")
    }
    if summary.audits.count == 0 { problems.append("no gradient was audited") }
    for server in servers where server.stop() != 0 {
      problems.append("\(server.name) did not stop cleanly: \(server.errorTail())")
    }
    return Outcome(
      status: status, audits: summary.audits, problems: problems, endpoint: endpoint,
      seconds: Date().timeIntervalSince(started))
  }

  /// Writes the SVG of `--plot`: the loss samples and every audit the coordinator printed.
  private func writePlot(to path: String, loss: [(Double, Double)], auditLines: [String]) throws {
    struct AuditLine: Decodable {
      var type: String
      var applied_at: Double?
      var raw_max_relative_error: Double?
      var passed: Bool?
      var conclusive: Bool?
    }
    let audits = auditLines.compactMap { line -> TrainingPlot.Audit? in
      guard let audit = try? JSONDecoder().decode(AuditLine.self, from: Data(line.utf8)),
        audit.type == "audit", let x = audit.applied_at, let y = audit.raw_max_relative_error
      else { return nil }
      return TrainingPlot.Audit(
        update: x, relativeError: y, passed: audit.passed ?? true,
        conclusive: audit.conclusive ?? true)
    }
    let plot = TrainingPlot(
      loss: loss, audits: audits, tolerance: audit.tolerance,
      title:
        "pstrain: \(workers) workers, \(training.mode), \(work.epochs) epochs, lr \(training.lr), \(audits.count) audits"
    )
    do {
      try plot.svg().write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
      throw Failure(message: "cannot write --plot \(path): \(error.localizedDescription)")
    }
    progress("train: wrote \(path)")
  }

  private func report(_ outcome: Outcome, dataset: Dataset) {
    let model = ChainModel(layers: training.layers)
    let objective = Objective(model: model)
    let weights = outcome.status.parameters.values
    let loss = objective.loss(weights: weights, samples: dataset.samples)
    let predictions: [(Double, Double)] = [1.0, -1.0].map { x in
      let e = model.predict(weights: weights, input: x)
      return (x, e > 0 ? 1 : (e < 0 ? -1 : 0))
    }
    let audits = outcome.audits
    if json {
      let predictionsJSON = predictions.map { "[\(JSON.number($0.0)),\(JSON.number($0.1))]" }
      print(
        "{\"weights\":\(JSON.numbers(weights)),\"loss\":\(JSON.number(loss)),"
          + "\"predictions\":[\(predictionsJSON.joined(separator: ","))],"
          + "\"updates\":\(outcome.status.version),\"gradients_applied\":\(outcome.status.gradientsApplied),"
          + "\"rejected\":\(outcome.status.rejected),\"mode\":\"\(training.mode)\",\"workers\":\(workers),"
          + "\"epochs\":\(work.epochs),\"lr\":\(JSON.number(training.lr)),\"seconds\":\(JSON.number(outcome.seconds)),"
          + "\"audits\":{\"count\":\(audits.count),\"failed\":\(audits.failed),"
          + "\"inconclusive\":\(audits.inconclusive),"
          + "\"max_relative_error\":\(JSON.number(audits.maximumRelativeError ?? 0))},"
          + "\"ok\":\(outcome.problems.isEmpty),\"problems\":[\(outcome.problems.map(JSON.string).joined(separator: ","))]}"
      )
    } else {
      print("train: finished in \(String(format: "%.2f", outcome.seconds)) s")
      print("  weights     \(weights.prefix(8).map { "\($0)" }.joined(separator: ", "))")
      print("  loss        \(loss) (mean over \(dataset.count) rows)")
      print("  predictions " + predictions.map { "\($0.0) -> \($0.1)" }.joined(separator: ", "))
      print(
        "  updates     \(outcome.status.version) (\(outcome.status.gradientsApplied) gradients, \(outcome.status.rejected) rejected)"
      )
      print(
        "  audits      \(audits.count), \(audits.failed) failed, \(audits.inconclusive) below rounding noise, max relative error \(audits.maximumRelativeError ?? 0)"
      )
      for problem in outcome.problems { print("  PROBLEM: \(problem)") }
    }
  }
}

/// The processes of a local cluster, stopped together however the run ends.
final class LocalCluster {
  let executable: String
  private(set) var processes: [ChildProcess] = []

  init(executable: String) { self.executable = executable }

  /// Starts `pstrain ARGUMENTS` as a child called `name`.
  func start(_ name: String, _ arguments: [String]) throws -> ChildProcess {
    let child = try ChildProcess(name: name, executable: executable, arguments: arguments)
    processes.append(child)
    return child
  }

  /// Stops every child still running: SIGTERM, then SIGKILL after a grace period.
  func stopAll() {
    for child in processes where child.isRunning { kill(child.pid, SIGTERM) }
    for child in processes { child.stop(graceMilliseconds: 5000) }
  }
}
