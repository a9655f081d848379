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
      bitflip=K:B flips bit B (0...63) of coordinate K's Float64 bits, stale=K computes at
      the weights received K replies earlier, sample=S computes the gradient of row r + S
      for each row r the push names; after=V strikes only pushes computed at version V or
      later, rate=P (0 < P <= 1) only a fraction P of pushes (a hash of the worker id and
      the push's sequence number); combine with commas.
      Exits 3 when training diverged (a batch's loss or gradient became NaN or infinite):
      the worker leaves instead of pushing it. Exits 4 when a server started with
      --quarantine refused it: a failed audit of its gradients was confirmed.
      """)

  @OptionGroup var server: ConnectOptions

  @Option(help: "This worker's shard, I/N (0-based); omit when the server leases rows.")
  var shard: String?

  @OptionGroup var work: WorkerTrainingOptions

  @OptionGroup var metrics: MetricsOptions

  @OptionGroup var logging: LoggingOptions

  @Option(help: "Worker id, unique in the run (default: the shard index, or random when leasing).")
  var id: UInt32?

  @Option(help: "Inject a gradient fault: \(GradientFault.forms).")
  var fault: String?

  @Option(
    help: "Resend an unanswered request after this many milliseconds (also the liveness signal).")
  var heartbeatMs: Int = 1000

  @Option(help: "Give up when the server has not answered for this many milliseconds.")
  var replyTimeoutMs: Int = 60_000

  /// The exit status of a worker that stopped because training diverged.
  static let divergedStatus: Int32 = 3
  /// The exit status of a worker the server quarantined (a confirmed failed audit).
  static let quarantinedStatus: Int32 = 4

  func validate() throws {
    guard work.epochs >= 0 else { throw ValidationError("--epochs must be >= 0") }
    guard replyTimeoutMs > 0 else { throw ValidationError("--reply-timeout-ms must be > 0") }
    guard heartbeatMs >= 10 else { throw ValidationError("--heartbeat-ms must be >= 10") }
    if let shard {
      do { _ = try Shard(parsing: shard) } catch { throw ValidationError("--shard: \(error)") }
    }
    try validateFault(fault)
  }

  func run() throws {
    try runReportingErrors {
      if work.isSparse {
        try runSparse(dataset: try loadSparseDataset(work.data!))
        return
      }
      let dataset = try work.loadData()
      let routingID = (0..<16).map { _ in UInt8.random(in: 0...255) }
      // The id is known before the server is asked (a leasing worker's is
      // drawn now), so a wait for the server is logged under it like the rest.
      let drawnID = UInt32.random(in: 0...UInt32(Int32.max))
      let shardIndex = try shard.map { UInt32(try Shard(parsing: $0).index) }
      let logger = logging.logger("worker \(id ?? shardIndex ?? drawnID)")
      let (context, connection) = try server.open(
        routingID: routingID, notice: { logger.info("\($0)") })
      defer { withExtendedLifetime(context) {} }
      let readiness = Readiness(
        awaiting: "a reply from the server", staleAfterMilliseconds: replyTimeoutMs)
      let metricsEndpoint = try metrics.start(readiness: readiness, logger: logger)
      defer { metricsEndpoint?.stop() }
      let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
      let model = try ModelCatalog.model(
        for: ModelDescriptor(name: status.modelName, layout: status.parameters.layout))
      try checkData(dataset, fits: model)
      let source: WorkSource
      let workerID: UInt32
      switch (shard, status.epochs > 0) {
      case (let text?, false):
        let shard = try Shard(parsing: text)
        source = .shard(shard, epochs: work.epochs)
        workerID = id ?? UInt32(shard.index)
      case (nil, true):
        if work.shuffle {
          throw Failure(
            message:
              "--shuffle needs a fixed shard: the server at \(server.connect) leases rows, in its own order"
          )
        }
        source = .leased
        workerID = id ?? drawnID
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
        fault: try fault.map(GradientFault.init(parsing:)) ?? .none, shuffleSeed: work.rowOrderSeed)
      let plan: String
      let epochs: Int
      switch source {
      case .shard(let shard, let shardEpochs):
        epochs = shardEpochs
        let order = work.shuffle ? ", shuffled (seed \(work.shuffleSeed))" : ""
        plan =
          "shard \(shard) (\(session.shardRows.count) of \(dataset.count) rows), \(epochs) epochs\(order)"
      case .leased:
        epochs = Int(status.epochs)
        plan = "leased rows of \(dataset.count), \(status.epochs) epochs"
      }
      session.notice = { logger.notice("\($0)") }
      let fault = session.fault.isNone ? "" : ", FAULT \(session.fault)"
      logger.info("\(plan), \(status.mode) server at \(server.connect)\(fault)")
      do {
        try WorkerLoop.run(
          session, connection: connection,
          timing: .init(retryMilliseconds: heartbeatMs, replyTimeoutMilliseconds: replyTimeoutMs),
          readiness: readiness, notice: { logger.info("\($0)") },
          describeWait: { request in
            server.statusNow(timeoutMilliseconds: 1000).map {
              QuietWait.awaited(by: $0, request: request)
            }
          }
        ) { progress in
          logger.info(
            "epoch \(epochProgress(progress.epoch, of: epochs)), \(progress.pushesApplied) pushes applied, version \(progress.version), epoch loss \(progress.epochLoss)"
          )
        }
      } catch RoleError.diverged(let version, let what) {
        // Its own status, so that `pstrain train` tells divergence from a failure.
        throw Failure(
          message: "\(RoleError.diverged(version: version, what: what))",
          code: WorkerCommand.divergedStatus)
      } catch RoleError.refused(let reply) where reply.code == .quarantined {
        // Its own status: the run goes on without this worker.
        throw Failure(message: reply.message, code: WorkerCommand.quarantinedStatus)
      }
      let resyncs = session.resyncs > 0 ? ", \(session.resyncs) resyncs" : ""
      let redone = session.pushesRedone > 0 ? ", \(session.pushesRedone) pushed again" : ""
      logger.info("done, \(session.pushesApplied) pushes applied\(resyncs)\(redone)")
    }
  }
}
