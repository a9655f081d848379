import ArgumentParser
import Foundation
import Roles
import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// `pstrain server`: holds the parameters and applies gradients.
struct ServerCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "server",
    abstract: "Run a parameter server.",
    discussion: """
      Prints `listening ENDPOINT` once bound (a `*` port resolved), then serves until \
      SIGINT or SIGTERM. async applies each gradient as it arrives; sync averages one \
      gradient from every joined worker per step, after --workers workers have joined.

      With --epochs E the server drives the epochs: it leases chunks of --chunk-rows rows \
      to workers started without --shard, takes back the rest of a chunk when its worker \
      leaves or falls silent for --dead-after-ms, and applies every row's gradient exactly \
      once per epoch, and exits with a summary once the epochs are done and the workers \
      have left (--stay keeps it serving). With --checkpoint-dir it writes atomic, \
      checksummed checkpoints every --checkpoint-every versions, on SIGTERM, and before it \
      tells a worker its work is done; --resume continues from the newest one. \
      When a checkpoint fails (a full disk) the server trains on and tries again at the next \
      boundary, then less often; status and the metrics show the newest durable checkpoint. \
      --checkpoint-required stops the server instead (exit 1). \
      With --quarantine a worker whose failed audit the coordinator confirmed is refused from \
      then on, and in async mode the parameters return to a snapshot (kept every \
      --snapshot-every versions) from before its pushes no audit vouched for (docs/audits.md).
      """)

  @Option(help: "ZeroMQ endpoint to bind; tcp://127.0.0.1:* picks a free port.")
  var bind: String = "tcp://*:5555"

  @Option(help: "Also write the bound endpoint to this file (for scripts and batch jobs).")
  var endpointFile: String?

  @Option(help: "Workers a sync step waits for before the first step.")
  var workers: Int = 1

  @OptionGroup var training: ServerTrainingOptions

  @Option(help: "Features per example (linear, softmax and mlp models; the chain takes 1).")
  var features: Int?

  @Option(help: "Classes K (softmax and mlp classifiers).")
  var classes: Int?

  @OptionGroup var metrics: MetricsOptions

  @OptionGroup var logging: LoggingOptions

  @Option(help: "Own part K/M of the parameters (a contiguous range); clients list all M servers.")
  var shard: String = "0/1"

  @Option(help: "Lease rows to workers for this many epochs (default: workers bring shards).")
  var epochs: UInt64?

  @Option(help: "Rows per lease.")
  var chunkRows: Int = 64

  @Option(help: "Drop a worker silent for this many milliseconds.")
  var deadAfterMs: UInt64 = 10_000

  @Option(help: "Directory for checkpoints.")
  var checkpointDir: String?

  @Option(help: "Write a checkpoint every N versions (and always on SIGTERM).")
  var checkpointEvery: UInt64 = 100

  @Flag(
    help:
      "Stop the server (exit 1) when a checkpoint fails, instead of training on without durability."
  )
  var checkpointRequired = false

  @Option(help: "The server's CURVE key pair file (from pstrain keygen); requires encryption.")
  var curveSecretKey: String?

  @Option(help: "Directory of the .pub keys of the clients allowed in, with --curve-secret-key.")
  var authorizedKeys: String?

  @Flag(
    help: "Resume from the newest checkpoint in --checkpoint-dir (start fresh if there is none).")
  var resume = false

  @Option(
    help: ArgumentHelp(
      "Start from the weights of this saved model (from pstrain train --save-model), at version 0.",
      discussion:
        "The file's model is used: --model, --layers, --activation, --loss, --dtype, --features and --classes may be left out; given with other than their defaults they must describe the file's model, or the server refuses to start. With --shard K/M the server keeps its part of the weights. With --resume, a checkpoint wins once there is one."
    ))
  var initFrom: String?

  @Flag(help: "With --epochs, keep serving after the epochs are done (default: exit).")
  var stay = false

  @OptionGroup var quarantine: QuarantineOptions

  @OptionGroup var tensorBoard: TensorBoardOptions

  func validate() throws {
    guard chunkRows >= 1 else { throw ValidationError("--chunk-rows must be >= 1") }
    if let features, !(1...1_000_000).contains(features) {
      throw ValidationError("--features must be 1...1000000")
    }
    if let classes, !(2...100_000).contains(classes) {
      throw ValidationError("--classes must be 2...100000")
    }
    do { _ = try Shard(parsing: shard) } catch { throw ValidationError("--shard: \(error)") }
    guard deadAfterMs >= 100 else { throw ValidationError("--dead-after-ms must be >= 100") }
    guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be >= 1") }
    guard (curveSecretKey == nil) == (authorizedKeys == nil) else {
      throw ValidationError("--curve-secret-key and --authorized-keys go together")
    }
    if resume && checkpointDir == nil {
      throw ValidationError("--resume needs --checkpoint-dir")
    }
    if checkpointRequired && checkpointDir == nil {
      throw ValidationError("--checkpoint-required needs --checkpoint-dir")
    }
    guard (1...Shard.maximumCount).contains(workers) else {
      throw ValidationError("--workers must be 1...\(Shard.maximumCount)")
    }
    try validateEndpoint(bind, flag: "--bind", binding: true)
  }

  /// `--features`, which every model but the chain needs.
  func requiredFeatures() throws -> Int {
    if training.model == "chain" { return features ?? 1 }
    guard let features else {
      throw Failure(
        message: "--model \(training.model) needs --features D (the number of feature columns)")
    }
    return features
  }

  /// `--classes`, which classifiers need.
  func requiredClasses() throws -> Int {
    let spec = try training.modelSpec()
    guard spec.isClassifier else { return 1 }
    guard let classes else {
      throw Failure(message: "--model \(training.model) classifies: give --classes K")
    }
    return classes
  }

  func run() throws {
    // Large buffers (gradients, replies) always come from mmap and go back to the
    // system when freed; glibc's adaptive threshold would otherwise keep a few
    // tensor-sized blocks resident after the first pushes.
    MemoryTuning.returnLargeBuffersToTheSystem()
    // Under a file-size limit (ulimit -f) a checkpoint write then fails with
    // EFBIG, like one on a full disk, instead of killing the server.
    Signals.ignore(.fileSizeLimitExceeded)
    try runReportingErrors {
      let logger = logging.logger("server")
      // One descriptor per connected worker or client: lift the soft limit
      // (often 1024) to the hard one, and say so when the run needs more.
      if let limit = OpenFileLimit.raiseToHardLimit(),
        OpenFileLimit.connections(within: limit) < workers
      {
        logger.warning(
          "--workers \(workers) needs a connection each, but this process may open only \(limit) files; raise the limit (ulimit -n)"
        )
      }
      let keyed = try training.keyedModel()
      let ownShard = try Shard(parsing: shard)
      if keyed != nil {
        guard initFrom == nil else {
          throw Failure(
            message: "--init-from holds a dense model; a sparse model's table starts empty")
        }
        guard epochs == nil else {
          throw Failure(
            message:
              "sparse models train on fixed shards: drop --epochs and give each worker --shard I/N and --epochs E"
          )
        }
      }
      guard ownShard.count == 1 || epochs == nil else {
        throw Failure(
          message: "leased work (--epochs) needs a single server; drop --shard or --epochs")
      }
      // Opened before anything else is made, so a bad directory stops the server at once.
      let events = try tensorBoard.open(run: TensorBoardOptions.serverRun(ownShard), logger: logger)
      defer { events?.close() }
      let store = try checkpointDir.map { try CheckpointStore(directory: $0) }
      let latest = resume ? try store?.latest() : nil
      // The configuration is built in place so that the server holds the only copy
      // of the initial parameters (it moves them out of the configuration).
      // A dense model's starting weights (a sparse model's table starts empty).
      let start = keyed == nil ? try startingPoint() : nil
      let server = try { () throws -> ParameterServer in
        if let keyed {
          var configuration = ServerConfiguration(
            mode: .async, requiredWorkers: workers,
            optimizer: try OptimizerSettings(learningRate: keyed.optimizer.learningRate),
            model: keyed.descriptor,
            initialParameters: Array(repeating: 0, count: keyed.model.rowWidth),
            deadAfterMilliseconds: deadAfterMs, shard: ownShard, validatingParameters: latest == nil
          )
          configuration.keyed = keyed
          if let latest {
            return try ParameterServer(configuration: configuration, resuming: latest.checkpoint)
          }
          return ParameterServer(configuration: configuration)
        }
        let start = start!
        let model = start.model
        let configuration = ServerConfiguration(
          mode: training.mode.mode, requiredWorkers: workers,
          optimizer: try start.options.optimizerSettings(),
          model: ModelCatalog.descriptor(of: model),
          initialParameters: latest == nil
            ? Array(start.weights[ownShard.rows(of: model.parameterCount)]) : [],
          deadAfterMilliseconds: deadAfterMs, leasedEpochs: epochs, chunkRows: chunkRows,
          staleness: training.staleness, shard: ownShard, quarantine: quarantine.policy,
          validatingParameters: latest == nil)
        if let latest {
          return try ParameterServer(configuration: configuration, resuming: latest.checkpoint)
        }
        return ParameterServer(configuration: configuration)
      }()
      let resumedFrom = latest?.path
      if let resumedFrom {
        server.resume?.checkpointFile = String(
          (resumedFrom.split(separator: "/").last ?? "").prefix(ResumeStatus.maximumFileNameLength))
      }
      var security: ServerSecurity?
      if let curveSecretKey, let authorizedKeys {
        security = ServerSecurity(
          keyPair: try CurveKeyFiles.readKeyPair(curveSecretKey),
          authorizedKeys: try CurveKeyFiles.authorizedKeys(in: authorizedKeys))
      }
      let context = try Context()
      // Bootstrapped before the loop creates its metrics, so they report.
      let readiness = Readiness(awaiting: "the server to bind and serve")
      let metricsEndpoint = try metrics.start(readiness: readiness, logger: logger)
      defer { metricsEndpoint?.stop() }
      let loop: ServerLoop
      do {
        loop = try ServerLoop(
          server: server, context: context, endpoint: bind, security: security,
          log: { logger.warning("\($0)") })
      } catch {
        throw Failure(message: "cannot bind \(bind): \((error as? ZMQError)?.reason ?? "\(error)")")
      }
      if security == nil && !isLoopback(loop.boundEndpoint) {
        printError(
          "warning: listening on \(loop.boundEndpoint) without encryption; any host that can reach it can push gradients"
        )
      }
      if let endpointFile {
        do {
          // Written to a temporary name and renamed, so a reader never sees half a line.
          try (loop.boundEndpoint + "\n").write(
            toFile: endpointFile, atomically: true, encoding: .utf8)
        } catch {
          throw Failure(
            message: "cannot write --endpoint-file \(endpointFile): \(error.localizedDescription)")
        }
      }
      print("listening \(loop.boundEndpoint)")

      let settings = server.configuration
      let startLine =
        "\(settings.shard.count > 1 ? "shard \(settings.shard) (\(settings.keyed == nil ? "parameters \(settings.parameterRange)" : "the keys it owns")), " : "")\(settings.mode) mode\(settings.mode == .ssp ? " (staleness \(settings.staleness))" : ""), model \(settings.keyed.map { "\($0.model), \($0.optimizer)" } ?? "\(settings.model), \(settings.optimizer)")"
        + (settings.leasedEpochs.map {
          ", leasing \(settings.chunkRows)-row chunks for \($0) epochs"
        } ?? "")
      logger.info("\(startLine)")
      if let resumedFrom {
        logger.notice(
          "resumed from \(resumedFrom) at version \(server.version) with weights \(JSON.numbers(server.parameters))"
        )
        logger.notice("\(server.resumeReport)")
      } else if let saved = start?.saved, let initFrom {
        logger.notice(
          "starting from the saved model \(initFrom) (\(saved.createdBy), version \(saved.version) of its run)"
        )
      } else if resume, let checkpointDir {
        logger.notice("--resume: no checkpoint in \(checkpointDir) yet; starting at version 0")
      }
      let checkpointer = store.map {
        Checkpointer(
          store: $0, every: checkpointEvery, required: checkpointRequired, server: server,
          resumedFrom: resumedFrom, log: { logger.info("\($0)") },
          warn: { logger.warning("\($0)") }, notice: { logger.notice("\($0)") })
      }
      var watch = LeasedJobWatch(
        now: MonotonicClock.milliseconds(),
        unseenLingerMilliseconds: server.configuration.deadAfterMilliseconds)
      var jobDone = false
      readiness.markReady()
      defer { readiness.markNotReady() }
      try loop.run(
        shouldStop: {
          if ShutdownSignal.isRequested { return true }
          let check = watch.check(server, now: MonotonicClock.milliseconds())
          if let notice = check.notice { logger.notice("\(notice)") }
          jobDone = check.done && !stay
          return jobDone
        }, checkpoints: checkpointer, tensorBoard: events, log: { logger.info("\($0)") })
      let status = server.status
      if jobDone {
        // The last checkpoint (if any) is written: the summary is of a durable end.
        print(
          "finished: \(status.epochs) epochs of \(status.datasetRows) rows, version \(status.version), \(status.gradientsApplied) gradients applied, \(status.rejected) rejected"
        )
      }
      logger.info(
        "stopped at version \(status.version), \(status.gradientsApplied) gradients applied, \(status.rejected) rejected"
      )
      if let reason = checkpointer?.stopReason { throw Failure(message: reason) }
    }
  }

  private func isLoopback(_ endpoint: String) -> Bool {
    endpoint.hasPrefix("tcp://127.") || endpoint.hasPrefix("tcp://[::1]")
      || endpoint.hasPrefix("tcp://localhost") || endpoint.hasPrefix("ipc://")
      || endpoint.hasPrefix("inproc://")
  }
}
