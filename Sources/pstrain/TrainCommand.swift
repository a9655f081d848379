import ArgumentParser
import Foundation
import Roles
import SystemCalls
import TrainingMath
import WireProtocol

/// `pstrain train`: a whole cluster on loopback, as separate OS processes.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train on a local cluster: a server, N workers and a coordinator on loopback.",
    discussion: """
      Each role runs as its own process of this executable, talking ZeroMQ over \
      tcp://127.0.0.1 on a free port. The defaults reproduce the tutorial: its two samples, \
      initial weights (0.2333, -0.233, -0.52133) and learning rate 0.05. The coordinator \
      audits a random sample of every worker's pushes, spending about --audit-budget of the \
      training's compute (--audit-every N adds periodic audits on top; --audit-budget 0 with no \
      --audit-every audits every 10 versions); the summary shows the sampling probability, what \
      it implies and each worker's coverage. Exit status: 0 done \
      (a run too short to be audited only warns), 1 a process failed or an audit found a \
      wrong gradient (with --quarantine a worker quarantined on a confirmed failure is not one: \
      the run goes on without it and the summary names it), 3 training diverged (the loss became NaN or infinite or grew a \
      millionfold; the cluster is stopped and one line says what to try), 130 stopped by \
      Ctrl-C, 143 by SIGTERM (the cluster is stopped within a second and the summary shows \
      what was reached). --json ends stdout with one JSON object; progress then goes to stderr.
      """)

  @Option(help: "Number of worker processes.")
  var workers: Int = 2

  @OptionGroup var training: ServerTrainingOptions

  @OptionGroup var work: WorkerTrainingOptions

  @Option(help: "Classes K of a classifier (default: the largest label in the data + 1).")
  var classes: Int?

  @Option(
    help:
      "The coordinator also audits each worker's next push every N versions (default: none, or 10 with --audit-budget 0); on top of the budget."
  )
  var auditEvery: UInt64?

  @OptionGroup var budget: AuditBudgetOptions

  @OptionGroup var audit: AuditToleranceOptions

  @Option(
    help: """
      Inject a gradient fault into one worker (--fault-worker), to see audits fail: \
      \(GradientFault.forms) (see docs/audits.md).
      """)
  var fault: String?

  @Option(help: "The worker --fault is injected into (0...--workers - 1).")
  var faultWorker: Int = 0

  @OptionGroup var quarantine: QuarantineOptions

  @Option(help: "Split the parameters over this many server processes.")
  var serverShards: Int = 1

  @Flag(help: "Let the server lease rows per epoch instead of giving workers fixed shards.")
  var leased = false

  @Option(help: "Rows per lease, with --leased.")
  var chunkRows: Int = 64

  @Option(
    help:
      "Held-out data (the columns of --data) the coordinator evaluates the weights on: test loss (and accuracy) in the progress, the summary, --json and --plot."
  )
  var testData: String?

  @Option(help: "With --test-data: evaluate every N versions (default: about 20 times a run).")
  var evalEvery: UInt64?

  @Option(help: "Write loss and audit-error curves over updates to this SVG file.")
  var plot: String?

  @Option(help: "Give up after this many seconds.")
  var timeoutS: Int = 600

  @OptionGroup var metrics: ClusterMetricsOptions

  @Flag(help: "End stdout with one JSON object.")
  var json = false

  @OptionGroup var tensorBoard: TensorBoardOptions

  @Option(
    help:
      "Write the final weights with the model to this file (for pstrain predict and server --init-from)."
  )
  var saveModel: String?

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
    if let (_, port) = metrics.first, port + serverShards + workers > 65535 {
      throw ValidationError(
        "--metrics: the \(serverShards + 1 + workers) processes need ports \(port)...\(port + serverShards + workers), past 65535; start lower"
      )
    }
    guard serverShards == 1 || !leased else {
      throw ValidationError("--leased needs a single server; drop --server-shards")
    }
    guard !(leased && work.shuffle) else {
      throw ValidationError(
        "--shuffle needs fixed shards: leased rows come in the order the server leases them; drop --leased or --shuffle"
      )
    }
    if let auditEvery {
      guard auditEvery >= 1 else { throw ValidationError("--audit-every must be >= 1") }
    }
    guard timeoutS >= 1 else { throw ValidationError("--timeout-s must be >= 1") }
    if let evalEvery {
      guard evalEvery >= 1 else { throw ValidationError("--eval-every must be >= 1") }
      guard testData != nil else { throw ValidationError("--eval-every needs --test-data") }
    }
    try validateFault(fault)
    guard (0..<workers).contains(faultWorker) else {
      throw ValidationError(
        "--fault-worker must be 0...\(workers - 1) (one of the --workers \(workers))")
    }
  }

  func run() throws {
    try runReportingErrors {
      // The servers and the coordinator write under it: a bad directory stops the run here.
      try tensorBoard.check()
      if work.isSparse {
        try runSparse()
        return
      }
      if try training.sparseModel() != nil {
        throw Failure(
          message:
            "--model \(training.model) trains on libsvm data: give --data FILE.libsvm (or --format libsvm)"
        )
      }
      let dataset = try work.loadData()
      let model = try training.model(
        features: dataset.featureCount, classes: try classCount(of: dataset))
      try checkData(dataset, fits: model, path: work.data)
      // Checked here too, so that a bad file stops the run before any process starts.
      if let testData {
        try checkData(
          try loadDataset(testData, labelColumn: work.labelColumn), fits: model, path: testData)
      }
      let cluster = LocalCluster(executable: currentExecutablePath(), metrics: metrics.first)
      defer { cluster.stopAll() }
      let outcome = try train(dataset: dataset, model: model, cluster: cluster)
      report(outcome, model: model, dataset: dataset)
      if let saveModel {
        try SaveTrainedModel.write(
          outcome, model: model, dataset: dataset, to: saveModel, progress: progress)
      }
      if outcome.interrupted {
        // As a shell reports the signal: 130 for SIGINT, 143 for SIGTERM.
        let signal = ShutdownSignal.signalNumber
        throw ExitCode(signal > 0 ? 128 + signal : Self.interruptedStatus)
      }
      if outcome.divergence != nil { throw ExitCode(Self.divergedStatus) }
      if !outcome.problems.isEmpty { throw ExitCode(1) }
    }
  }

  /// `--classes`, or for a classifier the largest label + 1 (1 for regression).
  func classCount(of dataset: Dataset) throws -> Int {
    guard try training.modelSpec().isClassifier else { return 1 }
    if let classes { return classes }
    let largest = dataset.labels.max() ?? 0
    guard largest >= 1, largest.rounded() == largest, largest < 100_000 else {
      throw Failure(
        message:
          "--model \(training.model) classifies, but the labels are not classes 0...K-1 (largest \(largest)); give --classes K or pick a regression model"
      )
    }
    return Int(largest) + 1
  }

  /// The exit status after Ctrl-C (SIGINT), as a shell reports it.
  static let interruptedStatus: Int32 = 130
  /// The exit status when training diverged.
  static let divergedStatus: Int32 = 3

  /// Everything a run ends with.
  struct Outcome {
    var status: ServerStatus
    var audits: AuditSummary
    var problems: [String]
    /// Worth knowing, not a failure (a run too short to be audited).
    var warnings: [String]
    /// The one line saying training diverged and what to try.
    var divergence: String?
    /// Stopped by a signal before the workers finished.
    var interrupted: Bool
    var endpoint: String
    var seconds: Double
    /// From the workers' start until they were done.
    var trainingSeconds: Double
    /// The coordinator's evaluations on `--test-data`.
    var evaluations: EvaluationHistory
    /// The coordinator's sampling figures and coverage (nil: it gave no summary).
    var sampling: CoordinatorSampling?
  }

  /// The coordinator's summary, read from its JSON line.
  struct AuditSummary: Decodable {
    var count: Int
    var failed: Int
    var inconclusive: Int
    var maximumRelativeError: Double?
    var failedWorkers: [Int]
    /// Failures per check (absent from an older coordinator's summary).
    var failedChecks: FailedChecks?
    /// Failures a second look confirmed.
    var confirmed: Int?

    /// Audits failed by each check.
    struct FailedChecks: Decodable {
      var finiteDifferences: Int
      var replay: Int

      enum CodingKeys: String, CodingKey {
        case finiteDifferences = "finite_differences"
        case replay
      }
    }

    enum CodingKeys: String, CodingKey {
      case count, failed, inconclusive, confirmed
      case maximumRelativeError = "max_relative_error"
      case failedWorkers = "failed_workers"
      case failedChecks = "failed_checks"
    }

    /// "2 failed (finite differences 0, replay 2; 2 confirmed)", or "0 failed".
    var failuresText: String {
      guard failed > 0, let failedChecks else { return "\(failed) failed" }
      return
        "\(failed) failed (finite differences \(failedChecks.finiteDifferences), replay \(failedChecks.replay); \(confirmed ?? 0) confirmed)"
    }

    /// The JSON members `failed_checks` and `confirmed` (no braces), with a leading comma.
    var checksJSONMembers: String {
      ",\"failed_checks\":{\"finite_differences\":\(failedChecks?.finiteDifferences ?? 0),"
        + "\"replay\":\(failedChecks?.replay ?? 0)},\"confirmed\":\(confirmed ?? 0)"
    }
  }

  func progress(_ line: String) {
    if json { printToStandardError(line) } else { print(line) }
  }

  /// Says where the processes serve metrics, with `train --metrics`.
  func reportMetricsPorts(shards: Int) {
    guard let (host, port) = metrics.first else { return }
    let workerPorts =
      workers == 1 ? "\(port + shards + 1)" : "\(port + shards + 1)-\(port + shards + workers)"
    progress(
      "train: metrics at http://\(host):PORT/metrics: server\(shards == 1 ? " \(port)" : "s \(port)-\(port + shards - 1)"), coordinator \(port + shards), workers \(workerPorts)"
    )
  }

  private func train(dataset: Dataset, model: AnyDifferentiableModel, cluster: LocalCluster)
    throws -> Outcome
  {
    let started = Date()
    let serverArguments =
      [
        "server", "--bind", "tcp://127.0.0.1:*", "--workers", "\(workers)",
      ] + training.arguments + quarantine.arguments
      + ["--features", "\(model.inputCount)"]
      + (model.isClassifier ? ["--classes", "\(model.outputCount)"] : [])
      // --stay: the run reads the server's status after the workers are done, then stops it.
      + (leased ? ["--epochs", "\(work.epochs)", "--chunk-rows", "\(chunkRows)", "--stay"] : [])
      + tensorBoard.arguments
    let (servers, endpoints) = try cluster.startServers(serverArguments, shards: serverShards)
    let endpoint = endpoints.joined(separator: ",")
    progress(
      "train: server at \(endpoint), \(training.mode) mode, \(workers) workers, \(work.epochs) epochs, lr \(training.learningRate)"
    )
    reportMetricsPorts(shards: serverShards)

    let coordinator = try cluster.start(
      "coordinator",
      [
        "coordinator", "--connect", endpoint, "--json",
      ] + (auditEvery.map { ["--every", "\($0)"] } ?? []) + budget.arguments + audit.arguments
        + work.dataArguments + evaluationArguments(rows: dataset.count) + tensorBoard.arguments)
    guard
      coordinator.waitForLine(
        timeoutMilliseconds: 20_000, matching: { $0.contains("\"type\":\"subscribed\"") })
        != nil
    else {
      throw Failure(message: "the coordinator did not start: \(coordinator.errorTail())")
    }

    // Started before the workers, so the curve begins at the start.
    let recorder = plot.map { _ in
      LossCurveRecorder(
        endpoint: endpoint,
        every: LossCurveRecorder.period(forExpectedVersions: expectedVersions(rows: dataset.count)),
        model: model, dataset: dataset)
    }
    var workerProcesses: [ChildProcess] = []
    let trainingStarted = Date()
    for index in 0..<workers {
      var arguments = ["worker", "--connect", endpoint, "--id", "\(index)"] + work.arguments
      if !leased { arguments += ["--shard", "\(index)/\(workers)"] }
      if index == faultWorker, let fault { arguments += ["--fault", fault] }
      workerProcesses.append(try cluster.start("worker \(index)", arguments))
    }

    let (context, connection) = try ConnectOptions.parse(["--connect", endpoint]).open()
    defer { withExtendedLifetime(context) {} }
    let objective = Objective(model: model)
    let divergenceCheck = DivergenceCheck(
      initialLoss: objective.loss(
        weights: model.initialWeights(seed: training.initSeed), dataset: dataset),
      dataset: dataset, regression: !model.isClassifier)
    let deadline = started.addingTimeInterval(Double(timeoutS))
    var problems: [String] = []
    var warnings: [String] = []
    var lastProgress = Date.distantPast
    var lossCurve: [(Double, Double)] = [(0, divergenceCheck.initialLoss)]
    var lastStatus: ServerStatus?
    var divergence: (version: UInt64, problem: String)?
    var interrupted = false
    // A bar that redraws in place when a person watches; plain lines for pipes and logs.
    let bar = !json && StandardStreams.outputIsTerminal
    let expectedSamples = Double(work.epochs * dataset.count)
    let workerDiverged = {
      workerProcesses.contains { $0.exitStatus == WorkerCommand.divergedStatus }
    }
    while workerProcesses.contains(where: \.isRunning) {
      if ShutdownSignal.isRequested {
        interrupted = true
        break
      }
      if divergence != nil || workerDiverged() { break }
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
          lastStatus = status
          let loss = objective.loss(weights: status.parameters.values, dataset: dataset)
          lossCurve.append((Double(status.version), loss))
          if let problem = divergenceCheck.problem(loss: loss) {
            divergence = (status.version, problem)
          }
          if bar {
            let fraction = min(
              1, samplesApplied(status, rows: dataset.count) / max(1, expectedSamples))
            let filled = Int(fraction * 30)
            print(
              "\rtrain [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 30 - filled))] \(Int(fraction * 100))%  version \(status.version)  loss \(String(format: "%.3e", loss))"
                + (latestEvaluation(coordinator).map { "  \($0.shortText)" } ?? "") + "   ",
              terminator: "")
            StandardStreams.flushAll()  // all output streams: the bar has no newline
          } else if reportNow {
            progress(
              "train: version \(status.version), \(status.workers.count) workers training, loss \(loss)"
                + (latestEvaluation(coordinator).map {
                  ", \($0.shortText) at version \($0.version)"
                }
                  ?? "")
            )
          }
        }
      }
      Sleep.milliseconds(10)
    }
    let trainingSeconds = Date().timeIntervalSince(trainingStarted)
    if bar { print("") }
    // Stopping early (a signal, divergence): the workers and the coordinator are
    // stopped first and the servers last, all within a second, so that what was
    // reached can still be read.
    let stoppingEarly = interrupted || divergence != nil || workerDiverged()
    let stopBy = Date().addingTimeInterval(0.9)
    if stoppingEarly {
      if interrupted { progress("train: interrupted; stopping the cluster") }
      LocalCluster.stop(workerProcesses + [coordinator], by: stopBy.addingTimeInterval(-0.4))
    }
    for worker in workerProcesses {
      let code = worker.wait(timeoutMilliseconds: 1000)
      guard !stoppingEarly else { continue }  // stopped by us, or diverged: said below
      // A quarantined worker is the audits working, not a failure: the summary says it.
      if code != 0 && code != WorkerCommand.quarantinedStatus {
        problems.append(
          "\(worker.name) exited with status \(code.map(String.init) ?? "unknown"): \(worker.errorTail())"
        )
      }
    }
    let status: ServerStatus
    do {
      // A stop signal must not cut this request short: it reads what was reached.
      let reply = try connection.request(
        .statusRequest, timeoutMilliseconds: stoppingEarly ? 200 : 10_000, what: "status",
        graceAfterStopMilliseconds: nil)
      guard case .status(let final) = reply else {
        throw RoleError.unexpectedReply(expected: "status", got: "\(reply.type)")
      }
      status = final
    } catch {
      guard stoppingEarly, let lastStatus else { throw error }
      status = lastStatus
    }
    let finalLoss = objective.loss(weights: status.parameters.values, dataset: dataset)
    if divergence == nil, let problem = divergenceCheck.problem(loss: finalLoss) {
      divergence = (status.version, problem)
    }
    if divergence == nil,
      let worker = workerProcesses.first(where: { $0.exitStatus == WorkerCommand.divergedStatus })
    {
      // The loss over the whole data still looks sane; the worker's own batch did not.
      divergence = (status.version, "\(worker.name) reported: \(worker.errorTail(1))")
    }

    let coordinatorExit =
      stoppingEarly
      ? coordinator.exitStatus : coordinator.stop()
    // Recorded and polled points of the loss on the training data, one per version.
    var trainLoss: [UInt64: Double] = [:]
    for (version, loss) in lossCurve { trainLoss[UInt64(version)] = loss }
    if let recorder {
      let recorded = recorder.finish()
      if let failure = recorded.failure {
        warnings.append("the loss curve has only the polled points: \(failure)")
      }
      for (version, loss) in recorded.points { trainLoss[UInt64(version)] = loss }
    }
    trainLoss[status.version] = finalLoss
    let evaluations = EvaluationHistory(
      coordinatorLines: coordinator.outputLines, trainLoss: trainLoss)
    if testData != nil, evaluations.last?.final != true, !stoppingEarly {
      warnings.append(
        "the coordinator made no final evaluation on --test-data; the test figures are of version \(evaluations.last.map { String($0.version) } ?? "none")"
      )
    }
    if let plot {
      let curve = trainLoss.sorted { $0.key < $1.key }.map { (Double($0.key), $0.value) }
      try writePlot(
        to: plot, loss: curve, evaluations: evaluations, auditLines: coordinator.outputLines)
    }
    let summaryLine = coordinator.outputLines.last(where: { $0.contains("\"type\":\"summary\"") })
    struct SummaryLine: Decodable { var audits: AuditSummary }
    let audits: AuditSummary
    var sampling: CoordinatorSampling?
    if let summaryLine,
      let summary = try? JSONDecoder().decode(SummaryLine.self, from: Data(summaryLine.utf8))
    {
      audits = summary.audits
      sampling = try? JSONDecoder().decode(CoordinatorSampling.self, from: Data(summaryLine.utf8))
      warnings += sampling?.warnings ?? []
    } else {
      audits = AuditSummary(countingAuditLines: coordinator.outputLines)
      if !interrupted {
        problems.append(
          "the coordinator gave no summary (status \(coordinatorExit.map(String.init) ?? "?")), audits counted from its lines: \(coordinator.errorTail())"
        )
      }
    }
    // Audits at diverged weights compare infinities; the divergence says it all.
    let quarantined = Set(status.quarantine.workers.map { Int($0.workerID) })
    if audits.failed > 0 && divergence == nil {
      if !quarantined.isEmpty && Set(audits.failedWorkers).isSubset(of: quarantined) {
        // Acted on: the workers were quarantined and their pushes rolled back.
        warnings.append(
          "\(audits.failed) audits failed (workers \(audits.failedWorkers)); quarantined: \(QuarantineText.summary(status.quarantine))"
        )
      } else {
        problems.append("\(audits.failed) audits failed (workers \(audits.failedWorkers))")
      }
    }
    if audits.count == 0 && divergence == nil && !interrupted {
      warnings.append(
        "no gradient was audited: the run made \(status.version) updates and audits come \(auditCadence(sampling)); for audits, try a longer run, a larger --audit-budget or a lower --audit-every"
      )
    }
    if stoppingEarly {
      LocalCluster.stop(servers, by: stopBy)
    } else {
      for server in servers where server.stop() != 0 {
        problems.append("\(server.name) did not stop cleanly: \(server.errorTail())")
      }
    }
    return Outcome(
      status: status, audits: audits, problems: problems, warnings: warnings,
      divergence: divergence.map {
        DivergenceCheck.line(
          version: $0.version, problem: $0.problem, rate: training.learningRate,
          layers: training.layers, dataset: dataset)
      },
      interrupted: interrupted, endpoint: endpoint,
      seconds: Date().timeIntervalSince(started), trainingSeconds: trainingSeconds,
      evaluations: evaluations, sampling: sampling)
  }

  /// How often audits come, for the warning that none came.
  private func auditCadence(_ sampling: CoordinatorSampling?) -> String {
    let periods = budget.period(auditEvery)
    var parts: [String] = []
    if let probability = sampling?.auditProbability, probability > 0 {
      parts.append("on a sample of pushes (probability \(String(format: "%.3g", probability)))")
    }
    if periods != AuditSubscription.noPeriods { parts.append("every \(periods) versions") }
    return parts.isEmpty ? "for each worker's first push only" : parts.joined(separator: " and ")
  }

  /// The coordinator's flags for `--test-data`: the file, and how often to evaluate
  /// (by default about 20 times over the versions the run should make).
  private func evaluationArguments(rows: Int) -> [String] {
    guard let testData else { return [] }
    let every = evalEvery ?? UInt64(max(1, expectedVersions(rows: rows) / 20))
    return ["--test-data", testData, "--eval-every", "\(every)"]
  }

  /// The latest evaluation the coordinator printed (nil without `--test-data`).
  private func latestEvaluation(_ coordinator: ChildProcess) -> CoordinatorEvaluationLine? {
    testData == nil ? nil : EvaluationHistory.latest(in: coordinator.outputLines)
  }

  /// Samples whose gradients the server applied, each epoch's counted again. Under
  /// leases the server counts rows; workers on fixed shards push one gradient per
  /// batch, the last of each epoch short when the batch size does not divide the
  /// shard, so gradients are converted at the run's rows per gradient
  /// (rows × epochs over the gradients a whole run pushes).
  private func samplesApplied(_ status: ServerStatus, rows: Int) -> Double {
    if leased {
      // Once finished, the epoch is the count of epochs and the last one's rows stay counted.
      guard status.epoch < status.epochs else {
        return Double(status.epochs) * Double(status.datasetRows)
      }
      return Double(status.epoch) * Double(status.datasetRows) + Double(status.rowsAppliedInEpoch)
    }
    func batches(_ count: Int) -> Int { (count + work.batchSize - 1) / work.batchSize }
    let gradientsPerEpoch = (0..<workers).reduce(0) { total, index in
      total + batches((index + 1) * rows / workers - index * rows / workers)
    }
    return Double(status.gradientsApplied) * Double(rows) / Double(max(1, gradientsPerEpoch))
  }

  /// The versions the run should make (an estimate under leases), to sample the
  /// loss curve: one per push in async mode, one per step of every worker otherwise.
  private func expectedVersions(rows: Int) -> Int {
    func batches(_ count: Int) -> Int { (count + work.batchSize - 1) / work.batchSize }
    let perWorker =
      leased
      ? [batches(rows / workers)]
      : (0..<workers).map { index in batches((index + 1) * rows / workers - index * rows / workers)
      }
    let perEpoch =
      training.mode == .async
      ? perWorker.reduce(0, +) * (leased ? workers : 1) : perWorker.max() ?? 0
    return work.epochs * perEpoch
  }

  /// Writes the SVG of `--plot`: the loss samples, the evaluations on `--test-data` and
  /// every audit the coordinator printed.
  private func writePlot(
    to path: String, loss: [(Double, Double)], evaluations: EvaluationHistory,
    auditLines: [String]
  ) throws {
    let audits = auditLines.compactMap { line -> TrainingPlot.Audit? in
      guard let audit = CoordinatorAuditLine(line), let x = audit.appliedAt,
        let y = audit.rawMaxRelativeError
      else { return nil }
      let passed = audit.passed ?? true
      let conclusive = audit.conclusive ?? true
      return TrainingPlot.Audit(
        // A passed audit's figure is its error above rounding noise; a failed
        // one's, the worst comparison.
        update: x, relativeError: passed && conclusive ? audit.maxRelativeError ?? y : y,
        passed: passed, conclusive: conclusive,
        detectableRelativeError: audit.detectableRelativeError ?? .infinity,
        gradientMagnitude: audit.gradientMagnitude ?? 0)
    }
    let plot = TrainingPlot(
      loss: loss,
      testLoss: evaluations.points.compactMap { point in
        point.testLoss.flatMap { $0.isFinite ? (Double(point.version), $0) : nil }
      },
      testAccuracy: evaluations.points.compactMap { point in
        point.testAccuracy.map { (Double(point.version), $0) }
      },
      audits: audits, tolerance: audit.tolerance,
      title:
        "pstrain: \(workers) workers, \(training.mode), \(work.epochs) epochs, lr \(training.learningRate), \(audits.count) audits"
    )
    do {
      try plot.svg().write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
      throw Failure(message: "cannot write --plot \(path): \(error.localizedDescription)")
    }
    progress("train: wrote \(path)")
  }

  private func report(_ outcome: Outcome, model: AnyDifferentiableModel, dataset: Dataset) {
    let weights = outcome.status.parameters.values
    let fit = DataFit(model: model, weights: weights, dataset: dataset)
    let audits = outcome.audits
    let trainAccuracy = fit.correct.map { Double($0) / Double(max(1, fit.rowCount)) }
    let samplesPerSecond =
      samplesApplied(outcome.status, rows: dataset.count) / max(1e-9, outcome.trainingSeconds)
    if json {
      print(
        "{\"weights\":\(JSON.numbers(weights)),\(fit.jsonMembers),"
          + "\"updates\":\(outcome.status.version),\"gradients_applied\":\(outcome.status.gradientsApplied),"
          + "\"rejected\":\(outcome.status.rejected),\"mode\":\"\(training.mode)\",\"workers\":\(workers),"
          + "\"epochs\":\(work.epochs),\"lr\":\(JSON.number(training.learningRate)),\"seconds\":\(JSON.number(outcome.seconds)),"
          + "\"training_seconds\":\(JSON.number(outcome.trainingSeconds)),"
          + "\"samples_per_s\":\(JSON.number(samplesPerSecond)),"
          + "\"train_accuracy\":\(trainAccuracy.map(JSON.number) ?? "null"),"
          + "\(outcome.evaluations.jsonMembers),"
          + "\"audits\":{\"count\":\(audits.count),\"failed\":\(audits.failed),"
          + "\"inconclusive\":\(audits.inconclusive),"
          + "\"max_relative_error\":\(JSON.number(audits.maximumRelativeError ?? 0))"
          + "\(audits.checksJSONMembers)},"
          + "\(QuarantineText.jsonMembers(outcome.status.quarantine)),"
          + (outcome.sampling.map { $0.jsonMembers + "," } ?? "")
          + "\"diverged\":\(outcome.divergence != nil),"
          + (outcome.divergence.map { "\"divergence\":\(JSON.string($0))," } ?? "")
          + "\"interrupted\":\(outcome.interrupted),"
          + "\"ok\":\(outcome.problems.isEmpty && outcome.divergence == nil && !outcome.interrupted),"
          + "\"problems\":[\(outcome.problems.map(JSON.string).joined(separator: ","))],"
          + "\"warnings\":[\(outcome.warnings.map(JSON.string).joined(separator: ","))]}"
      )
    } else {
      let how = outcome.interrupted ? "interrupted after" : "finished in"
      print("train: \(how) \(String(format: "%.2f", outcome.seconds)) s")
      print("  weights     \(weightsText(weights))")
      for line in fit.textLines { print(line) }
      if let trainAccuracy, let correct = fit.correct {
        print(
          "  accuracy    \(HeldOutEvaluation.percent(trainAccuracy)) (\(correct) of \(fit.rowCount) training rows)"
        )
      }
      if let line = outcome.evaluations.textLine { print(line) }
      print(
        "  updates     \(outcome.status.version) (\(outcome.status.gradientsApplied) gradients, \(outcome.status.rejected) rejected), \(String(format: "%.0f", samplesPerSecond)) samples/s over \(String(format: "%.2f", outcome.trainingSeconds)) s of training"
      )
      print(
        "  audits      \(audits.count), \(audits.failuresText), \(audits.inconclusive) below rounding noise, max relative error \(audits.maximumRelativeError ?? 0)"
      )
      if outcome.status.quarantine.enabled {
        print("  quarantine  \(QuarantineText.summary(outcome.status.quarantine))")
        for worker in outcome.status.quarantine.workers {
          print("              \(QuarantineText.text(worker))")
        }
      }
      for line in outcome.sampling?.textLines ?? [] { print(line) }
      for warning in outcome.warnings { print("  warning: \(warning)") }
      for problem in outcome.problems { print("  PROBLEM: \(problem)") }
    }
    // One line, on stderr with the other errors, also under --json.
    if let divergence = outcome.divergence { printError(divergence) }
  }
}

/// The processes of a local cluster, stopped together however the run ends.
final class LocalCluster {
  let executable: String
  /// Where the processes serve metrics: the n-th started on the n-th port from this one.
  let metrics: (host: String, port: Int)?
  private(set) var processes: [ChildProcess] = []

  init(executable: String, metrics: (host: String, port: Int)? = nil) {
    self.executable = executable
    self.metrics = metrics
  }

  /// Starts `pstrain ARGUMENTS` as a child called `name` (with `--metrics` on the next
  /// port, when the cluster has metrics).
  func start(_ name: String, _ arguments: [String]) throws -> ChildProcess {
    let address = metrics.map { "\($0.host):\($0.port + processes.count)" }
    let child = try ChildProcess(
      name: name, executable: executable,
      arguments: arguments + (address.map { ["--metrics", $0] } ?? []))
    processes.append(child)
    return child
  }

  /// Starts `shards` server processes (`pstrain ARGUMENTS --shard K/M`) one after the
  /// other and waits for each to print its endpoint; returns them with their endpoints.
  func startServers(_ arguments: [String], shards: Int) throws -> (
    servers: [ChildProcess], endpoints: [String]
  ) {
    var servers: [ChildProcess] = []
    var endpoints: [String] = []
    for index in 0..<shards {
      let server = try start("server \(index)", arguments + ["--shard", "\(index)/\(shards)"])
      guard
        let listening = server.waitForLine(
          timeoutMilliseconds: 20_000, matching: { $0.hasPrefix("listening ") })
      else {
        throw Failure(message: "server \(index) did not start: \(server.errorTail())")
      }
      servers.append(server)
      endpoints.append(String(listening.dropFirst("listening ".count)))
    }
    return (servers, endpoints)
  }

  /// Stops `children` together: SIGTERM to all at once, then SIGKILL to any still
  /// running at `deadline`; returns once every one has exited (or 2 s after SIGKILL).
  static func stop(_ children: [ChildProcess], by deadline: Date) {
    for child in children where child.isRunning {
      try? ProcessControl.send(.terminate, to: child.pid)
    }
    while children.contains(where: \.isRunning) && Date() < deadline { Sleep.milliseconds(5) }
    for child in children where child.isRunning { try? ProcessControl.send(.kill, to: child.pid) }
    for child in children { child.wait(timeoutMilliseconds: 2000) }
  }

  /// Stops every child still running: SIGTERM, then SIGKILL after a grace period.
  func stopAll() {
    for child in processes where child.isRunning {
      try? ProcessControl.send(.terminate, to: child.pid)
    }
    for child in processes { child.stop(graceMilliseconds: 5000) }
  }
}
