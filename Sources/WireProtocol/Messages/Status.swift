import TrainingMath

// Status: `status`, the server's state as `pstrain status` shows it, with a
// record per joined worker.

/// How the server applies gradients.
public enum ConsistencyMode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
  /// Apply each gradient on arrival.
  case async = 1
  /// Average one gradient from every worker per step.
  case sync = 2
  /// Steps as in sync, but a worker may run up to `staleness` steps ahead of the slowest.
  case ssp = 3

  public var description: String {
    switch self {
    case .async: "async"
    case .sync: "sync"
    case .ssp: "ssp"
    }
  }
}

/// One worker as the server sees it.
public struct WorkerStatus: Equatable, Sendable {
  /// The worker's id.
  public var workerID: UInt32
  /// Its shard.
  public var shard: Shard
  /// Gradients applied from it.
  public var pushesApplied: UInt64
  /// The last sequence number accepted from it.
  public var lastSequence: UInt64
  /// Staleness of its last applied gradient: versions between the weights it was
  /// computed at and the version it was applied to.
  public var lastStaleness: UInt64

  /// A worker's status.
  public init(
    workerID: UInt32, shard: Shard, pushesApplied: UInt64, lastSequence: UInt64,
    lastStaleness: UInt64 = 0
  ) {
    self.workerID = workerID
    self.shard = shard
    self.pushesApplied = pushesApplied
    self.lastSequence = lastSequence
    self.lastStaleness = lastStaleness
  }
}

/// The server's state, as `pstrain status` shows it.
public struct ServerStatus: Equatable, Sendable {
  /// How gradients are applied.
  public var mode: ConsistencyMode
  /// The parameters' version (updates applied to the parameters).
  public var version: UInt64
  /// Gradients applied (in sync mode, several per version).
  public var gradientsApplied: UInt64
  /// Messages refused with an error or dropped as malformed.
  public var rejected: UInt64
  /// The SGD learning rate.
  public var learningRate: Double
  /// Workers a sync step waits for before the first step.
  public var requiredWorkers: UInt32
  /// The model name the parameters belong to.
  public var modelName: String
  /// The current parameters.
  public var parameters: NamedTensors
  /// The workers currently joined.
  public var workers: [WorkerStatus]
  /// Workers that joined and left.
  public var workersLeft: UInt32
  /// Audit records sent to coordinators.
  public var auditRecordsSent: UInt64
  /// Leased work: epochs to train (0: workers bring their own shards).
  public var epochs: UInt64
  /// Leased work: the current epoch, 0-based (equal to `epochs` when finished).
  public var epoch: UInt64
  /// Leased work: rows of the current epoch whose gradient has been applied.
  public var rowsAppliedInEpoch: UInt64
  /// Rows of the dataset the workers read (0 before the first join).
  public var datasetRows: UInt64
  /// Workers presumed dead after a silence longer than the liveness timeout.
  public var workersDead: UInt32
  /// The optimizer, described (e.g. `adam(lr 0.001, ...)`).
  public var optimizer: String
  /// The learning rate the next update uses (after the schedule).
  public var currentLearningRate: Double
  /// In ssp mode, the staleness bound (0 otherwise).
  public var staleness: UInt64
  /// Which part of the parameters this server owns (0/1: all of them).
  public var serverShard: Shard
  /// The flat index of the first parameter in `parameters`.
  public var parameterOffset: UInt64
  /// Parameters of the whole model, across all server shards.
  public var totalParameters: UInt64
  /// Audit verdicts coordinators reported, and how many failed.
  public var auditsReported: UInt64
  public var auditsFailed: UInt64
  /// The latest reported verdict, if any.
  public var lastAudit: AuditResult?
  /// How checkpoints are going (nil: the server writes none).
  public var checkpoints: CheckpointHealth?
  /// What the server restored when it started with `--resume` (nil otherwise).
  public var resume: ResumeStatus?
  /// The latest evaluation on held-out data a coordinator reported (nil: none yet).
  public var lastEvaluation: EvaluationReport?
  /// Quarantined workers and rollbacks.
  public var quarantine: QuarantineReport
  /// The keyed table of a sparse model (nil: the server holds a dense model).
  public var keyedTable: KeyedTableStatus?

  /// A server status.
  public init(
    mode: ConsistencyMode, version: UInt64, gradientsApplied: UInt64, rejected: UInt64,
    learningRate: Double, requiredWorkers: UInt32, modelName: String, parameters: NamedTensors,
    workers: [WorkerStatus], workersLeft: UInt32, auditRecordsSent: UInt64, epochs: UInt64 = 0,
    epoch: UInt64 = 0, rowsAppliedInEpoch: UInt64 = 0, datasetRows: UInt64 = 0,
    workersDead: UInt32 = 0, optimizer: String = "sgd", currentLearningRate: Double? = nil,
    staleness: UInt64 = 0, serverShard: Shard = Shard.whole,
    parameterOffset: UInt64 = 0, totalParameters: UInt64? = nil, auditsReported: UInt64 = 0,
    auditsFailed: UInt64 = 0, lastAudit: AuditResult? = nil, checkpoints: CheckpointHealth? = nil,
    resume: ResumeStatus? = nil, lastEvaluation: EvaluationReport? = nil,
    quarantine: QuarantineReport = .disabled, keyedTable: KeyedTableStatus? = nil
  ) {
    self.keyedTable = keyedTable
    self.quarantine = quarantine
    self.lastEvaluation = lastEvaluation
    self.checkpoints = checkpoints
    self.resume = resume
    self.auditsReported = auditsReported
    self.auditsFailed = auditsFailed
    self.lastAudit = lastAudit
    self.staleness = staleness
    self.serverShard = serverShard
    self.parameterOffset = parameterOffset
    self.totalParameters = totalParameters ?? UInt64(parameters.values.count)
    self.optimizer = optimizer
    self.currentLearningRate = currentLearningRate ?? learningRate
    self.epochs = epochs
    self.epoch = epoch
    self.rowsAppliedInEpoch = rowsAppliedInEpoch
    self.datasetRows = datasetRows
    self.workersDead = workersDead
    self.mode = mode
    self.version = version
    self.gradientsApplied = gradientsApplied
    self.rejected = rejected
    self.learningRate = learningRate
    self.requiredWorkers = requiredWorkers
    self.modelName = modelName
    self.parameters = parameters
    self.workers = workers
    self.workersLeft = workersLeft
    self.auditRecordsSent = auditRecordsSent
  }
}

extension ConsistencyMode {
  /// `u8`: 1 async, 2 sync, 3 ssp.
  static func decode(from reader: inout ByteReader) throws(DecodeError) -> ConsistencyMode {
    let modeByte = try reader.read(UInt8.self, "mode")
    guard let mode = ConsistencyMode(rawValue: modeByte) else {
      throw .outOfRange(
        field: "mode", value: String(modeByte), allowed: "1 (async), 2 (sync) or 3 (ssp)")
    }
    return mode
  }
}

extension ServerStatus {
  /// The `status` body, in the order of `docs/protocol.md`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(mode.rawValue)
    sink.write(version)
    sink.write(gradientsApplied)
    sink.write(rejected)
    sink.write(learningRate)
    sink.write(requiredWorkers)
    sink.write(modelName, lengthAs: UInt8.self)
    parameters.encode(into: &sink)
    sink.write(UInt32(workers.count))
    for worker in workers { worker.encode(into: &sink) }
    sink.write(workersLeft)
    sink.write(auditRecordsSent)
    sink.write(epochs)
    sink.write(epoch)
    sink.write(rowsAppliedInEpoch)
    sink.write(datasetRows)
    sink.write(workersDead)
    sink.write(optimizer, lengthAs: UInt16.self)
    sink.write(currentLearningRate)
    sink.write(staleness)
    serverShard.encode(into: &sink)
    sink.write(parameterOffset)
    sink.write(totalParameters)
    sink.write(auditsReported)
    sink.write(auditsFailed)
    sink.write(UInt8(lastAudit == nil ? 0 : 1))
    if let last = lastAudit { last.encode(into: &sink) }
    sink.write(UInt8(checkpoints == nil ? 0 : 1))
    checkpoints?.encode(into: &sink)
    sink.write(UInt8(resume == nil ? 0 : 1))
    resume?.encode(into: &sink)
    sink.write(UInt8(lastEvaluation == nil ? 0 : 1))
    lastEvaluation?.encode(into: &sink)
    quarantine.encode(into: &sink)
    sink.write(UInt8(keyedTable == nil ? 0 : 1))
    keyedTable?.encode(into: &sink)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> ServerStatus {
    let mode = try ConsistencyMode.decode(from: &reader)
    let version = try reader.read(UInt64.self, "version")
    let applied = try reader.read(UInt64.self, "gradients applied")
    let rejected = try reader.read(UInt64.self, "rejected")
    let learningRate = try reader.readFinite("learning rate")
    let required = try reader.read(UInt32.self, "required workers")
    let modelName = try reader.readName("model name")
    let parameters = try NamedTensors.decode(from: &reader, "parameters")
    let workerCount = Int(try reader.read(UInt32.self, "worker count"))
    guard workerCount <= WireCodec.maximumWorkers,
      workerCount <= reader.remaining / WorkerStatus.encodedSize
    else {
      throw .outOfRange(
        field: "worker count", value: String(workerCount),
        allowed: "at most \(WireCodec.maximumWorkers) and what fits")
    }
    var workers: [WorkerStatus] = []
    for _ in 0..<workerCount { workers.append(try WorkerStatus.decode(from: &reader)) }
    let left = try reader.read(UInt32.self, "workers left")
    let audits = try reader.read(UInt64.self, "audit records sent")
    let epochs = try reader.read(UInt64.self, "epochs")
    let epoch = try reader.read(UInt64.self, "epoch")
    let rowsApplied = try reader.read(UInt64.self, "rows applied in epoch")
    let datasetRows = try reader.read(UInt64.self, "dataset rows")
    let dead = try reader.read(UInt32.self, "workers dead")
    let optimizer = try reader.readString(lengthAs: UInt16.self, maximum: 1024, "optimizer")
    let currentRate = try reader.readFinite("current learning rate")
    let staleness = try reader.read(UInt64.self, "staleness")
    let serverShard = try Shard.decode(from: &reader)
    let offset = try reader.read(UInt64.self, "parameter offset")
    let total = try reader.read(UInt64.self, "total parameters")
    let auditsReported = try reader.read(UInt64.self, "audits reported")
    let auditsFailed = try reader.read(UInt64.self, "audits failed")
    let lastAudit =
      try reader.readFlag("last audit present") ? try AuditResult.decode(from: &reader) : nil
    let checkpoints =
      try reader.readFlag("checkpoint report present")
      ? try CheckpointHealth.decode(from: &reader) : nil
    // Compared without adding: a hostile offset near 2^64 must not overflow.
    guard offset <= total, UInt64(parameters.values.count) <= total - offset else {
      throw .outOfRange(
        field: "parameter offset", value: String(offset), allowed: "within the \(total) parameters")
    }
    let resume =
      try reader.readFlag("resume present") ? try ResumeStatus.decode(from: &reader) : nil
    let lastEvaluation =
      try reader.readFlag("evaluation present") ? try EvaluationReport.decode(from: &reader) : nil
    let quarantine = try QuarantineReport.decode(from: &reader)
    let keyedTable =
      try reader.readFlag("keyed table present") ? try KeyedTableStatus.decode(from: &reader) : nil
    return ServerStatus(
      mode: mode, version: version, gradientsApplied: applied, rejected: rejected,
      learningRate: learningRate, requiredWorkers: required, modelName: modelName,
      parameters: parameters, workers: workers, workersLeft: left, auditRecordsSent: audits,
      epochs: epochs, epoch: epoch, rowsAppliedInEpoch: rowsApplied, datasetRows: datasetRows,
      workersDead: dead, optimizer: optimizer, currentLearningRate: currentRate,
      staleness: staleness, serverShard: serverShard, parameterOffset: offset,
      totalParameters: total, auditsReported: auditsReported, auditsFailed: auditsFailed,
      lastAudit: lastAudit, checkpoints: checkpoints, resume: resume,
      lastEvaluation: lastEvaluation, quarantine: quarantine, keyedTable: keyedTable)
  }
}

extension WorkerStatus {
  /// Bytes of one worker's record, as `encode(into:)` writes it: the status
  /// decoder bounds the worker count with it, so the two cannot drift apart.
  static let encodedSize = ByteCounter.size {
    WorkerStatus(workerID: 0, shard: .whole, pushesApplied: 0, lastSequence: 0).encode(into: &$0)
  }

  /// One worker's record: `u32 id`, shard, `u64 pushes applied`, `u64 last
  /// sequence`, `u64 staleness of its last applied gradient`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    shard.encode(into: &sink)
    sink.write(pushesApplied)
    sink.write(lastSequence)
    sink.write(lastStaleness)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> WorkerStatus {
    let id = try reader.read(UInt32.self, "worker id")
    let shard = try Shard.decode(from: &reader)
    let pushes = try reader.read(UInt64.self, "worker pushes")
    let last = try reader.read(UInt64.self, "worker last sequence")
    let staleness = try reader.read(UInt64.self, "worker staleness")
    return WorkerStatus(
      workerID: id, shard: shard, pushesApplied: pushes, lastSequence: last,
      lastStaleness: staleness)
  }
}
