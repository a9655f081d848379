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

extension WireCodec {
  /// Appends `resume` (or its absence) to a status body: `u8` 1 and the fields, or `u8` 0.
  static func encode<Sink: ByteSink>(_ resume: ResumeStatus?, into sink: inout Sink) {
    guard let resume else {
      sink.write(UInt8(0))
      return
    }
    sink.write(UInt8(1))
    sink.write(resume.checkpointFile, lengthAs: UInt16.self)
    sink.write(resume.version)
    sink.write(resume.gradientsApplied)
    sink.write(UInt8(resume.jobComplete ? 1 : 0))
    sink.write(resume.rowsToLease)
    sink.write(UInt32(resume.workers.count))
    for worker in resume.workers {
      sink.write(worker.workerID)
      sink.write(worker.lastSequence)
    }
  }

  /// Reads what `encode(_:into:)` wrote.
  static func decodeResume(_ reader: inout ByteReader) throws(DecodeError) -> ResumeStatus? {
    let present = try reader.read(UInt8.self, "resume present")
    guard present <= 1 else {
      throw .outOfRange(field: "resume present", value: String(present), allowed: "0 or 1")
    }
    guard present == 1 else { return nil }
    let file = try reader.readString(
      lengthAs: UInt16.self, maximum: ResumeStatus.maximumFileNameLength, "resume checkpoint file")
    let version = try reader.read(UInt64.self, "resume version")
    let applied = try reader.read(UInt64.self, "resume gradients applied")
    let complete = try reader.read(UInt8.self, "resume job complete")
    guard complete <= 1 else {
      throw .outOfRange(field: "resume job complete", value: String(complete), allowed: "0 or 1")
    }
    let rows = try reader.read(UInt64.self, "resume rows to lease")
    let count = Int(try reader.read(UInt32.self, "resume worker count"))
    guard count <= maximumWorkers, count <= reader.remaining / 12 else {
      throw .outOfRange(
        field: "resume worker count", value: String(count),
        allowed: "at most \(maximumWorkers) and what fits")
    }
    var workers: [ResumeStatus.KnownWorker] = []
    workers.reserveCapacity(count)
    for _ in 0..<count {
      let id = try reader.read(UInt32.self, "resume worker id")
      let sequence = try reader.read(UInt64.self, "resume worker last sequence")
      workers.append(.init(workerID: id, lastSequence: sequence))
    }
    return ResumeStatus(
      checkpointFile: file, version: version, gradientsApplied: applied,
      jobComplete: complete == 1, rowsToLease: rows, workers: workers)
  }
}
