import ArgumentParser
import Logging
import Roles
import TrainingMath
import WireProtocol

/// `pstrain worker`: trains on one shard and pushes gradients.
struct WorkerCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "worker",
    abstract: "Run a worker on one shard of the data.",
    discussion: """
      Shard I/N is the contiguous block of rows [I*n/N, (I+1)*n/N) of the n-row dataset.
      The model comes from the server. --fault injects a gradient fault for testing audits:
      scale=F multiplies the gradient by F, flip=K negates coordinate K (0-based),
      stale=K computes at the weights received K replies earlier; combine with commas.
      """)

  @OptionGroup var server: ConnectOptions

  @Option(help: "This worker's shard, I/N (0-based); omit when the server leases rows.")
  var shard: String?

  @OptionGroup var work: WorkerTrainingOptions

  @OptionGroup var metrics: MetricsOptions

  @OptionGroup var logging: LoggingOptions

  @Option(help: "Worker id, unique in the run (default: the shard index, or random when leasing).")
  var id: UInt32?

  @Option(help: "Inject a gradient fault: scale=F, flip=K, stale=K.")
  var fault: String?

  @Option(
    help: "Resend an unanswered request after this many milliseconds (also the liveness signal).")
  var heartbeatMs: Int = 1000

  @Option(help: "Give up when the server has not answered for this many milliseconds.")
  var replyTimeoutMs: Int = 60_000

  func validate() throws {
    guard replyTimeoutMs > 0 else { throw ValidationError("--reply-timeout-ms must be > 0") }
    guard heartbeatMs >= 10 else { throw ValidationError("--heartbeat-ms must be >= 10") }
    if let shard {
      do { _ = try Shard(parsing: shard) } catch { throw ValidationError("--shard: \(error)") }
    }
    try validateFault(fault)
  }

  func run() throws {
    try runReportingErrors {
      let dataset = try loadDataset(work.data)
      let routingID = (0..<16).map { _ in UInt8.random(in: 0...255) }
      let (context, connection) = try server.open(routingID: routingID)
      defer { withExtendedLifetime(context) {} }
      let readiness = Readiness(
        awaiting: "a reply from the server", staleAfterMilliseconds: replyTimeoutMs)
      let metricsEndpoint = try metrics.start(
        readiness: readiness, logger: logging.logger("worker"))
      defer { metricsEndpoint?.stop() }
      let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
      let model = try ModelCatalog.chain(
        for: ModelDescriptor(name: status.modelName, layout: status.parameters.layout))
      let source: WorkSource
      let workerID: UInt32
      switch (shard, status.epochs > 0) {
      case (let text?, false):
        let shard = try Shard(parsing: text)
        source = .shard(shard, epochs: work.epochs)
        workerID = id ?? UInt32(shard.index)
      case (nil, true):
        source = .leased
        workerID = id ?? UInt32.random(in: 0...UInt32(Int32.max))
      case (_?, true):
        throw Failure(
          message:
            "the server at \(server.connect) leases rows (it drives \(status.epochs) epochs); start the worker without --shard"
        )
      case (nil, false):
        throw Failure(
          message:
            "the server at \(server.connect) does not lease rows; give the worker --shard I/N (or start the server with --epochs E)"
        )
      }
      if work.pipeline > 1 && server.endpoints.count > 1 {
        throw Failure(
          message:
            "--pipeline needs a single server; with server shards each push waits for every shard's answer"
        )
      }
      if work.pipeline > 1 && status.mode != .async {
        throw Failure(
          message:
            "--pipeline \(work.pipeline) needs an async server; a \(status.mode) server answers one push at a time"
        )
      }
      let session = try WorkerSession(
        workerID: workerID, source: source, dataset: dataset, model: model,
        batchSize: work.batchSize, pipeline: work.pipeline, pushesPerFrame: work.pushesPerFrame,
        fault: try fault.map(GradientFault.init(parsing:)) ?? .none)
      let plan: String
      switch source {
      case .shard(let shard, let epochs):
        plan =
          "shard \(shard) (\(session.shardRows.count) of \(dataset.count) rows), \(epochs) epochs"
      case .leased:
        plan = "leased rows of \(dataset.count), \(status.epochs) epochs"
      }
      // Logging was bootstrapped above (logging.logger), before the worker had its id.
      let logger = Logger(label: "worker \(workerID)")
      let fault = session.fault.isNone ? "" : ", FAULT \(session.fault)"
      logger.info("\(plan), \(status.mode) server at \(server.connect)\(fault)")
      try WorkerLoop.run(
        session, connection: connection,
        timing: .init(retryMilliseconds: heartbeatMs, replyTimeoutMilliseconds: replyTimeoutMs),
        readiness: readiness
      ) { progress in
        logger.info(
          "epoch \(progress.epoch + 1), \(progress.pushesApplied) pushes applied, version \(progress.version), epoch loss \(progress.epochLoss)"
        )
      }
      let resyncs = session.resyncs > 0 ? ", \(session.resyncs) resyncs" : ""
      logger.info("done, \(session.pushesApplied) pushes applied\(resyncs)")
    }
  }
}
