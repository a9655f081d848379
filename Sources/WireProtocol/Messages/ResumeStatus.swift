/// What a server started with `--resume` restored from its checkpoint, and
/// what it expects the workers to redo: part of its status (protocol 4).
public struct ResumeStatus: Equatable, Sendable {
  /// A worker the checkpoint knows, with the last push of it the checkpoint holds.
  public struct KnownWorker: Equatable, Sendable {
    /// The worker.
    public var workerID: UInt32
    /// Its highest push in the checkpoint: a worker on a fixed shard pushes
    /// again whatever it pushed after this one (and any the window lacks).
    public var lastSequence: UInt64

    /// A worker entry.
    public init(workerID: UInt32, lastSequence: UInt64) {
      self.workerID = workerID
      self.lastSequence = lastSequence
    }
  }

  /// The checkpoint file's name (not its directory).
  public var checkpointFile: String
  /// The version restored.
  public var version: UInt64
  /// Gradients applied in the checkpoint.
  public var gradientsApplied: UInt64
  /// Leased work: whether the job was complete in the checkpoint.
  public var jobComplete: Bool
  /// Leased work: rows of the restored epoch the checkpoint lacks, leased again.
  public var rowsToLease: UInt64
  /// The workers of the checkpoint's exactly-once table.
  public var workers: [KnownWorker]

  /// Longest file name carried.
  public static let maximumFileNameLength = 1024

  /// A resume report.
  public init(
    checkpointFile: String, version: UInt64, gradientsApplied: UInt64, jobComplete: Bool = false,
    rowsToLease: UInt64 = 0, workers: [KnownWorker] = []
  ) {
    self.checkpointFile = checkpointFile
    self.version = version
    self.gradientsApplied = gradientsApplied
    self.jobComplete = jobComplete
    self.rowsToLease = rowsToLease
    self.workers = workers
  }
}

extension ResumeStatus {
  /// The status's resume report after its presence flag (`docs/protocol.md`).
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(checkpointFile, lengthAs: UInt16.self)
    sink.write(version)
    sink.write(gradientsApplied)
    sink.write(UInt8(jobComplete ? 1 : 0))
    sink.write(rowsToLease)
    sink.write(UInt32(workers.count))
    for worker in workers { worker.encode(into: &sink) }
  }

  /// Bytes of one worker's entry: `u32 id`, `u64 last sequence`.
  static let workerEntryByteCount = ByteCounter.size { sink in
    KnownWorker(workerID: 0, lastSequence: 0).encode(into: &sink)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> ResumeStatus {
    let file = try reader.readString(
      lengthAs: UInt16.self, maximum: ResumeStatus.maximumFileNameLength, "resume checkpoint file")
    let version = try reader.read(UInt64.self, "resume version")
    let applied = try reader.read(UInt64.self, "resume gradients applied")
    let complete = try reader.readFlag("resume job complete")
    let rows = try reader.read(UInt64.self, "resume rows to lease")
    let count = Int(try reader.read(UInt32.self, "resume worker count"))
    guard count <= WireCodec.maximumWorkers, count <= reader.remaining / workerEntryByteCount else {
      throw .outOfRange(
        field: "resume worker count", value: String(count),
        allowed: "at most \(WireCodec.maximumWorkers) and what fits")
    }
    var workers: [KnownWorker] = []
    workers.reserveCapacity(count)
    for _ in 0..<count {
      let id = try reader.read(UInt32.self, "resume worker id")
      let sequence = try reader.read(UInt64.self, "resume worker last sequence")
      workers.append(.init(workerID: id, lastSequence: sequence))
    }
    return ResumeStatus(
      checkpointFile: file, version: version, gradientsApplied: applied,
      jobComplete: complete, rowsToLease: rows, workers: workers)
  }
}

extension ResumeStatus.KnownWorker {
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(lastSequence)
  }
}
