import TrainingMath

/// Everything a server needs to resume where it stopped: parameters, version,
/// the exactly-once table and the epoch's progress. Serialized by `CheckpointCodec`.
public struct ServerCheckpoint: Equatable, Sendable {
  /// Leased-work progress at the time of the checkpoint.
  public struct WorkProgress: Equatable, Sendable {
    /// Epochs to train.
    public var epochs: UInt64
    /// Rows per chunk.
    public var chunkRows: UInt64
    /// Current epoch.
    public var epoch: UInt64
    /// Next unapplied row of each chunk of the current epoch.
    public var nextRows: [UInt64]

    /// Progress of leased work.
    public init(epochs: UInt64, chunkRows: UInt64, epoch: UInt64, nextRows: [UInt64]) {
      self.epochs = epochs
      self.chunkRows = chunkRows
      self.epoch = epoch
      self.nextRows = nextRows
    }
  }

  /// How gradients are applied.
  public var mode: ConsistencyMode
  /// The optimizer: settings and state (step, moments).
  public var optimizer: Optimizer
  /// Workers the first sync step waits for.
  public var requiredWorkers: UInt32
  /// The ssp staleness bound.
  public var staleness: UInt64
  /// The part of the parameters this server owns.
  public var shard: Shard
  /// The model the parameters belong to.
  public var model: ModelDescriptor
  /// Parameters' version.
  public var version: UInt64
  /// Gradients applied.
  public var gradientsApplied: UInt64
  /// Messages refused.
  public var rejected: UInt64
  /// The parameters, in the model's layout.
  public var parameters: [Double]
  /// Last applied push sequence per worker id, ascending by id.
  public var sequences: [WorkerSequence]
  /// The data the workers read, once known.
  public var dataset: DatasetIdentity?
  /// Leased-work progress, when the server leases rows.
  public var work: WorkProgress?
  /// A sparse model's keyed table, when the server holds one (format 4 on).
  public var keyedTable: CheckpointedKeyedTable?

  /// A worker id, its highest applied sequence and which of the 256 below it were applied.
  public struct WorkerSequence: Equatable, Sendable {
    /// The worker.
    public var workerID: UInt32
    /// Its highest applied push.
    public var sequence: UInt64
    /// Bit i: push `sequence - 1 - i` was applied.
    public var recent: AppliedBitmap

    /// A table entry.
    public init(workerID: UInt32, sequence: UInt64, recent: AppliedBitmap = AppliedBitmap()) {
      self.workerID = workerID
      self.sequence = sequence
      self.recent = recent
    }
  }

  /// A checkpoint.
  public init(
    mode: ConsistencyMode, optimizer: Optimizer, requiredWorkers: UInt32, staleness: UInt64 = 0,
    shard: Shard = Shard.whole, model: ModelDescriptor,
    version: UInt64, gradientsApplied: UInt64, rejected: UInt64, parameters: [Double],
    sequences: [WorkerSequence], dataset: DatasetIdentity?, work: WorkProgress?,
    keyedTable: CheckpointedKeyedTable? = nil
  ) {
    self.keyedTable = keyedTable
    self.mode = mode
    self.optimizer = optimizer
    self.staleness = staleness
    self.shard = shard
    self.requiredWorkers = requiredWorkers
    self.model = model
    self.version = version
    self.gradientsApplied = gradientsApplied
    self.rejected = rejected
    self.parameters = parameters
    self.sequences = sequences
    self.dataset = dataset
    self.work = work
  }
}

/// The checkpoint file format: magic `PSCK`, a `u16` format version, the
/// checkpoint's fields little-endian, and a CRC-32 of all preceding bytes. A file
/// that is truncated, altered or of another format is refused with the reason.
public enum CheckpointCodec {
  /// The format version written.
  public static let formatVersion: UInt16 = 4
  static let magic: [UInt8] = Array("PSCK".utf8)

  /// Why a checkpoint file was refused.
  public enum Failure: Error, Equatable, CustomStringConvertible, ChecksummedFileFailure {
    case notACheckpoint
    case unsupportedFormat(UInt16)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case malformed(String)

    public var description: String {
      switch self {
      case .notACheckpoint: "not a pstrain checkpoint (bad magic bytes or too short)"
      case .unsupportedFormat(let version):
        "checkpoint format \(version) is not supported (this build reads \(CheckpointCodec.formatVersion))"
      case .checksumMismatch(let stored, let computed):
        "checksum mismatch (stored \(String(stored, radix: 16)), computed \(String(computed, radix: 16))): the file is corrupt or truncated"
      case .malformed(let reason): "malformed checkpoint: \(reason)"
      }
    }
  }

  /// The checkpoint as file bytes (see `ChecksummedFile`).
  public static func encode(_ checkpoint: ServerCheckpoint) -> [UInt8] {
    ChecksummedFile.encode(magic: magic, format: formatVersion, checkpoint)
  }

  /// Parses and verifies checkpoint file bytes.
  public static func decode(_ bytes: [UInt8]) throws(Failure) -> ServerCheckpoint {
    // Format 1 kept 64 bits of each worker's window (one u64), format 2 up to
    // 256; format 3 gave the model's tensors shapes; format 4 added the keyed
    // table section.
    try ChecksummedFile.decode(
      bytes, magic: magic, formats: 1...formatVersion, failure: Failure.self
    ) { try ServerCheckpoint.decode(from: &$0, format: $1) }
  }
}

extension ServerCheckpoint: FileBody {
  /// The fields between the format version and the CRC.
  func encodeBody<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(UInt32(ByteCounter.size { model.encode(into: &$0) }))
    model.encode(into: &sink)
    sink.write(mode.rawValue)
    shard.encode(into: &sink)
    optimizer.encode(into: &sink)
    sink.write(requiredWorkers)
    sink.write(staleness)
    sink.write(version)
    sink.write(gradientsApplied)
    sink.write(rejected)
    sink.write(UInt64(parameters.count))
    sink.write(float64Values: parameters[...])
    sink.write(UInt32(sequences.count))
    for entry in sequences { entry.encode(into: &sink) }
    sink.write(UInt8(dataset == nil ? 0 : 1))
    if let dataset {
      sink.write(dataset.rows)
      sink.write(dataset.fingerprint)
    }
    sink.write(UInt8(work == nil ? 0 : 1))
    if let work {
      sink.write(work.epochs)
      sink.write(work.chunkRows)
      sink.write(work.epoch)
      sink.write(UInt64(work.nextRows.count))
      for row in work.nextRows { sink.write(row) }
    }
    sink.write(UInt8(keyedTable == nil ? 0 : 1))
    keyedTable?.encode(into: &sink)
  }

  /// The fields after the format version, up to the CRC; a `DecodeError` or a
  /// `CheckpointCodec.Failure`.
  fileprivate static func decode(from reader: inout ByteReader, format: UInt16) throws
    -> ServerCheckpoint
  {
    let modelLength = Int(try reader.read(UInt32.self, "model size"))
    var modelReader = ByteReader(try reader.readBytes(modelLength, "model"))
    let model = try ModelDescriptor.decode(from: &modelReader, withShapes: format >= 3)
    try modelReader.expectEnd()
    guard let mode = ConsistencyMode(rawValue: try reader.read(UInt8.self, "mode")) else {
      throw CheckpointCodec.Failure.malformed("mode")
    }
    let shard = try Shard.decode(from: &reader)
    let sliceCount = shard.rows(of: model.layout.totalCount).count
    let optimizer = try Optimizer.decode(from: &reader, parameterCount: sliceCount)
    let required = try reader.read(UInt32.self, "required workers")
    let staleness = try reader.read(UInt64.self, "staleness")
    let version = try reader.read(UInt64.self, "version")
    let applied = try reader.read(UInt64.self, "gradients applied")
    let rejected = try reader.read(UInt64.self, "rejected")
    let count = Int(clamping: try reader.read(UInt64.self, "parameter count"))
    guard count == sliceCount, count <= reader.remaining / 8 else {
      throw CheckpointCodec.Failure.malformed(
        "parameter count \(count) does not fit the model \(model)")
    }
    let parameters = try reader.readFiniteArray(count: count, "parameters")
    let entries = Int(try reader.read(UInt32.self, "sequence table size"))
    guard entries <= reader.remaining / WorkerSequence.minimumEncodedSize else {
      throw CheckpointCodec.Failure.malformed("sequence table size")
    }
    var sequences: [WorkerSequence] = []
    for _ in 0..<entries {
      sequences.append(try WorkerSequence.decode(from: &reader, format: format))
    }
    var dataset: DatasetIdentity?
    if try reader.read(UInt8.self, "dataset present") == 1 {
      dataset = DatasetIdentity(
        rows: try reader.read(UInt64.self, "dataset rows"),
        fingerprint: try reader.read(UInt64.self, "dataset fingerprint"))
    }
    var work: WorkProgress?
    if try reader.read(UInt8.self, "work present") == 1 {
      let epochs = try reader.read(UInt64.self, "epochs")
      let chunkRows = try reader.read(UInt64.self, "chunk rows")
      let epoch = try reader.read(UInt64.self, "epoch")
      let chunkCount = Int(clamping: try reader.read(UInt64.self, "chunk count"))
      guard chunkCount <= reader.remaining / 8, chunkRows >= 1 else {
        throw CheckpointCodec.Failure.malformed("chunk table")
      }
      var nextRows: [UInt64] = []
      for _ in 0..<chunkCount { nextRows.append(try reader.read(UInt64.self, "chunk next row")) }
      work = .init(epochs: epochs, chunkRows: chunkRows, epoch: epoch, nextRows: nextRows)
    }
    var keyedTable: CheckpointedKeyedTable?
    if format >= 4, try reader.readFlag("keyed table present") {
      keyedTable = try CheckpointedKeyedTable.decode(from: &reader)
    }
    guard reader.remaining == 0 else {
      throw CheckpointCodec.Failure.malformed("\(reader.remaining) unexpected bytes")
    }
    return ServerCheckpoint(
      mode: mode, optimizer: optimizer, requiredWorkers: required, staleness: staleness,
      shard: shard, model: model,
      version: version, gradientsApplied: applied, rejected: rejected, parameters: parameters,
      sequences: sequences, dataset: dataset, work: work, keyedTable: keyedTable)
  }
}

extension ServerCheckpoint.WorkerSequence {
  /// The fewest bytes an entry takes (an empty window): the decoder bounds the
  /// table's size with it.
  static let minimumEncodedSize = ByteCounter.size {
    Self(workerID: 0, sequence: 0).encode(into: &$0)
  }

  /// `u32 worker id`, `u64 sequence`, the window as `weights` carries its
  /// applied-below bitmap.
  fileprivate func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(sequence)
    recent.encode(into: &sink)
  }

  /// Format 1 kept one `u64` word; format 2 leaves out trailing zero words, so
  /// each window has one encoding.
  fileprivate static func decode(from reader: inout ByteReader, format: UInt16)
    throws(DecodeError) -> Self
  {
    let workerID = try reader.read(UInt32.self, "sequence table worker id")
    let sequence = try reader.read(UInt64.self, "sequence table sequence")
    let recent =
      format == 1
      ? AppliedBitmap(words: [try reader.read(UInt64.self, "sequence window")])
      : try AppliedBitmap.decode(from: &reader)
    return Self(workerID: workerID, sequence: sequence, recent: recent)
  }
}

extension Optimizer {
  /// The schedule byte's bit saying a weight decay (`f64`) follows the
  /// schedule: absent when the decay is 0, so such checkpoints keep the bytes
  /// they had before weight decay existed (no format change).
  static let weightDecayFlag: UInt8 = 0x80

  /// Settings (kind, learning rate, betas, epsilon, schedule, weight decay
  /// unless 0), step, moments.
  fileprivate func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(UInt8(OptimizerKind.allCases.firstIndex(of: settings.kind)!))
    sink.write(settings.learningRate)
    sink.write(settings.beta1)
    sink.write(settings.beta2)
    sink.write(settings.epsilon)
    let flag = settings.weightDecay == 0 ? 0 : Self.weightDecayFlag
    switch settings.schedule {
    case .constant:
      sink.write(UInt8(0) | flag)
    case .step(let every, let factor):
      sink.write(UInt8(1) | flag)
      sink.write(every)
      sink.write(factor)
    case .cosine(let total, let minimum):
      sink.write(UInt8(2) | flag)
      sink.write(total)
      sink.write(minimum)
    }
    if flag != 0 { sink.write(settings.weightDecay) }
    sink.write(step)
    for moment in [firstMoment, secondMoment] {
      sink.write(UInt64(moment.count))
      sink.write(float64Values: moment[...])
    }
  }

  fileprivate static func decode(from reader: inout ByteReader, parameterCount: Int) throws
    -> Optimizer
  {
    let kindIndex = Int(try reader.read(UInt8.self, "optimizer kind"))
    guard kindIndex < OptimizerKind.allCases.count else {
      throw CheckpointCodec.Failure.malformed("optimizer kind")
    }
    let learningRate = try reader.readFinite("optimizer learning rate")
    let beta1 = try reader.readFinite("optimizer beta1")
    let beta2 = try reader.readFinite("optimizer beta2")
    let epsilon = try reader.readFinite("optimizer epsilon")
    let schedule: LearningRateSchedule
    let scheduleByte = try reader.read(UInt8.self, "learning-rate schedule")
    switch scheduleByte & ~weightDecayFlag {
    case 0: schedule = .constant
    case 1:
      schedule = .step(
        every: try reader.read(UInt64.self, "schedule every"),
        factor: try reader.readFinite("schedule factor"))
    case 2:
      schedule = .cosine(
        total: try reader.read(UInt64.self, "schedule total"),
        minimum: try reader.readFinite("schedule minimum"))
    default: throw CheckpointCodec.Failure.malformed("learning-rate schedule")
    }
    var weightDecay = 0.0
    if scheduleByte & weightDecayFlag != 0 {
      weightDecay = try reader.readFinite("optimizer weight decay")
      // One encoding per checkpoint: a decay of 0 is written by leaving the flag out.
      guard weightDecay > 0 else { throw CheckpointCodec.Failure.malformed("weight decay") }
    }
    let step = try reader.read(UInt64.self, "optimizer step")
    var moments: [[Double]] = []
    for _ in 0..<2 {
      let count = Int(clamping: try reader.read(UInt64.self, "optimizer moment size"))
      moments.append(try reader.readFiniteArray(count: count, "optimizer moment"))
    }
    do {
      let settings = try OptimizerSettings(
        kind: OptimizerKind.allCases[kindIndex], learningRate: learningRate, schedule: schedule,
        beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
      return try Optimizer(
        settings: settings, step: step, firstMoment: moments[0], secondMoment: moments[1],
        parameterCount: parameterCount)
    } catch {
      throw CheckpointCodec.Failure.malformed("\(error)")
    }
  }
}

extension ByteReader {
  /// `count` finite Float64 values as a new array, allocated only once the
  /// bytes are known to be there.
  mutating func readFiniteArray(count: Int, _ field: @autoclosure () -> String)
    throws(DecodeError) -> [Double]
  {
    try requireElements(count, of: 8, field())
    var failure: DecodeError?
    let values = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
      do throws(DecodeError) {
        try readFiniteArray(into: buffer, field())
        initialized = count
      } catch {
        failure = error
      }
    }
    if let failure { throw failure }
    return values
  }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib computes it.
public enum CRC32 {
  /// Eight tables: table k maps a byte to its CRC contribution k bytes further
  /// on, so eight bytes are folded in per step ("slicing by 8").
  private static let tables: [UInt32] = {
    var tables = [UInt32](repeating: 0, count: 8 * 256)
    for index in 0..<256 {
      var value = UInt32(index)
      for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
      tables[index] = value
    }
    for slice in 1..<8 {
      for index in 0..<256 {
        let previous = tables[(slice - 1) * 256 + index]
        tables[slice * 256 + index] = tables[Int(previous & 0xFF)] ^ (previous >> 8)
      }
    }
    return tables
  }()

  /// The CRC-32 of `bytes`.
  public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
    if let crc = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0)) }) {
      return crc
    }
    return Array(bytes).withUnsafeBytes { checksum($0) }
  }

  /// The CRC-32 of the bytes in `buffer`.
  public static func checksum(_ buffer: UnsafeRawBufferPointer) -> UInt32 {
    tables.withUnsafeBufferPointer { table in
      var crc: UInt32 = 0xFFFF_FFFF
      var offset = 0
      let count = buffer.count
      while count - offset >= 8 {
        let low = crc ^ buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian
        let high = buffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian
        crc =
          table[7 * 256 + Int(low & 0xFF)] ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
          ^ table[5 * 256 + Int((low >> 16) & 0xFF)] ^ table[4 * 256 + Int(low >> 24)]
          ^ table[3 * 256 + Int(high & 0xFF)] ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
          ^ table[256 + Int((high >> 16) & 0xFF)] ^ table[Int(high >> 24)]
        offset += 8
      }
      while offset < count {
        crc = table[Int((crc ^ UInt32(buffer[offset])) & 0xFF)] ^ (crc >> 8)
        offset += 1
      }
      return crc ^ 0xFFFF_FFFF
    }
  }
}

extension CheckpointCodec.Failure {
  /// `ChecksummedFileFailure`'s name for `notACheckpoint`.
  static var wrongMagic: Self { .notACheckpoint }
}
