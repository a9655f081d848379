import Logging
import Roles
import SystemCalls
import TrainingMath
import WireProtocol

extension WorkerCommand {
  /// The worker of a sparse model: libsvm data on a fixed shard, pulling and
  /// pushing only the keys its batches touch.
  func runSparse(dataset: SparseDataset) throws {
    guard let shardText = shard else {
      throw Failure(message: "a sparse model's worker trains a fixed shard: give it --shard I/N")
    }
    let shard = try Shard(parsing: shardText)
    let workerID = id ?? UInt32(shard.index)
    let logger = logging.logger("worker \(workerID)")
    let routingID = (0..<16).map { _ in UInt8.random(in: 0...255) }
    let (context, connection) = try server.open(
      routingID: routingID, notice: { logger.info("\($0)") })
    defer { withExtendedLifetime(context) {} }
    let readiness = Readiness(
      awaiting: "a reply from the server", staleAfterMilliseconds: replyTimeoutMs)
    let metricsEndpoint = try metrics.start(readiness: readiness, logger: logger)
    defer { metricsEndpoint?.stop() }
    let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
    guard let model = try SparseModelSpec(wireName: status.modelName) else {
      throw Failure(
        message:
          "the server at \(server.connect) holds the dense model \(status.modelName); libsvm data trains sparse-logreg or fm:K"
      )
    }
    let session = SparseWorkerSession(
      workerID: workerID, shard: shard, epochs: work.epochs, dataset: dataset, model: model,
      batchSize: work.batchSize, pipeline: work.pipeline, shuffleSeed: work.rowOrderSeed,
      fault: try fault.map(GradientFault.init(parsing:)) ?? .none)
    let rows = shard.rows(of: dataset.count).count
    let order = work.shuffle ? ", shuffled (seed \(work.shuffleSeed))" : ""
    let fault = session.fault.isNone ? "" : ", FAULT \(session.fault)"
    logger.info(
      "shard \(shard) (\(rows) of \(dataset.count) rows, \(dataset.nonzeroCount) nonzeros), \(work.epochs) epochs\(order), \(model), pipeline \(work.pipeline), server at \(server.connect)\(fault)"
    )
    let started = MonotonicClock.milliseconds()
    do {
      try SparseWorkerLoop.run(
        session, connection: connection,
        timing: .init(retryMilliseconds: heartbeatMs, replyTimeoutMilliseconds: replyTimeoutMs),
        readiness: readiness, notice: { logger.info("\($0)") }
      ) { progress in
        logger.info(
          "epoch \(epochProgress(progress.epoch, of: work.epochs)), \(progress.pushesApplied) pushes applied, version \(progress.version), epoch loss \(progress.epochLoss)"
        )
      }
    } catch {
      // Their own statuses, as the dense worker's: divergence, and a quarantine.
      if case .diverged = error {
        throw Failure(message: "\(error)", code: WorkerCommand.divergedStatus)
      }
      if case .refused(let reply) = error, reply.code == .quarantined {
        throw Failure(message: reply.message, code: WorkerCommand.quarantinedStatus)
      }
      throw error
    }
    let seconds = Double(MonotonicClock.milliseconds() - started) / 1000
    let rate = seconds > 0 ? Double(session.examples) / seconds : 0
    logger.info(
      "done, \(session.pushesApplied) pushes applied, \(session.examples) examples (\(Int(rate)) examples/s), \(session.keysPulled) keys pulled"
    )
  }
}
