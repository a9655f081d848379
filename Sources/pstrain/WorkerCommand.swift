import ArgumentParser
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

  @Option(help: "This worker's shard, I/N (0-based).")
  var shard: String

  @OptionGroup var work: WorkerTrainingOptions

  @Option(help: "Worker id, unique in the run (default: the shard index).")
  var id: UInt32?

  @Option(help: "Inject a gradient fault: scale=F, flip=K, stale=K.")
  var fault: String?

  @Option(help: "How long to wait for each reply in milliseconds (sync steps wait for peers).")
  var replyTimeoutMs: Int = 60_000

  func validate() throws {
    guard replyTimeoutMs > 0 else { throw ValidationError("--reply-timeout-ms must be > 0") }
    do { _ = try Shard(parsing: shard) } catch { throw ValidationError("--shard: \(error)") }
    try validateFault(fault)
  }

  func run() throws {
    try runReportingErrors {
      let shard = try Shard(parsing: self.shard)
      let dataset = try loadDataset(work.data)
      let samples = dataset.rows(of: shard)
      let workerID = id ?? UInt32(shard.index)
      let (context, connection) = try server.open()
      defer { withExtendedLifetime(context) {} }
      let status = try connection.status(timeoutMilliseconds: server.timeoutMs)
      let model = try ModelCatalog.chain(
        for: ModelDescriptor(name: status.modelName, layout: status.parameters.layout))
      let session = try WorkerSession(
        workerID: workerID, shard: shard, samples: samples, model: model, epochs: work.epochs,
        batchSize: work.batchSize, fault: try fault.map(GradientFault.init(parsing:)) ?? .none)
      if samples.isEmpty {
        print(
          "worker \(workerID): shard \(shard) of \(dataset.count) rows is empty; joining and leaving"
        )
      }
      print(
        "worker \(workerID): shard \(shard), \(samples.count) rows, \(work.epochs) epochs, \(status.mode) server at \(server.connect)"
          + (session.fault.isNone ? "" : ", FAULT \(session.fault)"))
      try WorkerLoop.run(
        session, connection: connection, replyTimeoutMilliseconds: replyTimeoutMs
      ) { progress in
        print(
          "worker \(workerID): epoch \(min(progress.epoch + 1, work.epochs))/\(work.epochs), \(progress.pushesApplied) pushes applied, version \(progress.version), epoch loss \(progress.epochLoss)"
        )
      }
      print("worker \(workerID): done, \(session.pushesApplied) pushes applied")
    }
  }
}
