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
    sequences: [WorkerSequence], dataset: DatasetIdentity?, work: WorkProgress?
  ) {
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
  public static let formatVersion: UInt16 = 2
  static let magic: [UInt8] = Array("PSCK".utf8)

  /// Why a checkpoint file was refused.
  public enum Failure: Error, Equatable, CustomStringConvertible {
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

  /// The checkpoint as file bytes.
  public static func encode(_ checkpoint: ServerCheckpoint) -> [UInt8] {
    var body: [UInt8] = magic
    let values =
      checkpoint.parameters.count + checkpoint.optimizer.firstMoment.count
      + checkpoint.optimizer.secondMoment.count
    body.reserveCapacity(1024 + 8 * values + 45 * checkpoint.sequences.count)
    func put<T: FixedWidthInteger>(_ value: T) {
      withUnsafeBytes(of: value.littleEndian) { body.append(contentsOf: $0) }
    }
    /// Doubles as their little-endian bit patterns: copied whole on a
    /// little-endian host (80 MB of parameters in one copy, not 10M appends).
    func put(_ values: [Double]) {
      if 1.littleEndian == 1 {
        values.withUnsafeBytes { body.append(contentsOf: $0) }
      } else {
        for value in values { put(value.bitPattern) }
      }
    }
    put(formatVersion)
    let model = WireCodec.encode(model: checkpoint.model)
    put(UInt32(model.count))
    body += model
    put(checkpoint.mode.rawValue)
    put(UInt32(checkpoint.shard.index))
    put(UInt32(checkpoint.shard.count))
    let optimizer = checkpoint.optimizer
    put(UInt8(OptimizerKind.allCases.firstIndex(of: optimizer.settings.kind)!))
    put(optimizer.settings.learningRate.bitPattern)
    put(optimizer.settings.beta1.bitPattern)
    put(optimizer.settings.beta2.bitPattern)
    put(optimizer.settings.epsilon.bitPattern)
    switch optimizer.settings.schedule {
    case .constant:
      put(UInt8(0))
    case .step(let every, let factor):
      put(UInt8(1))
      put(every)
      put(factor.bitPattern)
    case .cosine(let total, let minimum):
      put(UInt8(2))
      put(total)
      put(minimum.bitPattern)
    }
    put(optimizer.step)
    for moment in [optimizer.firstMoment, optimizer.secondMoment] {
      put(UInt64(moment.count))
      put(moment)
    }
    put(checkpoint.requiredWorkers)
    put(checkpoint.staleness)
    put(checkpoint.version)
    put(checkpoint.gradientsApplied)
    put(checkpoint.rejected)
    put(UInt64(checkpoint.parameters.count))
    put(checkpoint.parameters)
    put(UInt32(checkpoint.sequences.count))
    for entry in checkpoint.sequences {
      put(entry.workerID)
      put(entry.sequence)
      let words = entry.recent.significantWordCount
      put(UInt8(words))
      for index in 0..<words { put(entry.recent.word(index)) }
    }
    put(UInt8(checkpoint.dataset == nil ? 0 : 1))
    if let dataset = checkpoint.dataset {
      put(dataset.rows)
      put(dataset.fingerprint)
    }
    put(UInt8(checkpoint.work == nil ? 0 : 1))
    if let work = checkpoint.work {
      put(work.epochs)
      put(work.chunkRows)
      put(work.epoch)
      put(UInt64(work.nextRows.count))
      for row in work.nextRows { put(row) }
    }
    put(CRC32.checksum(body))
    return body
  }

  /// Parses and verifies checkpoint file bytes.
  public static func decode(_ bytes: [UInt8]) throws(Failure) -> ServerCheckpoint {
    guard bytes.count >= magic.count + 2 + 4, Array(bytes.prefix(4)) == magic else {
      throw .notACheckpoint
    }
    let stored = bytes.suffix(4).enumerated().reduce(UInt32(0)) {
      $0 | UInt32($1.element) << (8 * $1.offset)
    }
    let computed = CRC32.checksum(bytes.dropLast(4))
    let format = UInt16(bytes[4]) | UInt16(bytes[5]) << 8
    // Format 1 kept 64 bits of each worker's window (one u64), format 2 up to 256.
    guard format == formatVersion || format == 1 else { throw .unsupportedFormat(format) }
    guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }
    var reader = CheckpointReader(bytes: Array(bytes[6..<(bytes.count - 4)]))
    do {
      let modelLength = Int(try reader.read(UInt32.self))
      let modelBytes = try reader.take(modelLength)
      let model = try WireCodec.decode(model: modelBytes)
      guard let mode = ConsistencyMode(rawValue: try reader.read(UInt8.self)) else {
        throw Failure.malformed("mode")
      }
      let shardIndex = Int(try reader.read(UInt32.self))
      let shardCount = Int(try reader.read(UInt32.self))
      guard let shard = try? Shard(index: shardIndex, count: shardCount) else {
        throw Failure.malformed("server shard \(shardIndex)/\(shardCount)")
      }
      let sliceCount = shard.rows(of: model.layout.totalCount).count
      let optimizer = try readOptimizer(&reader, parameterCount: sliceCount)
      let required = try reader.read(UInt32.self)
      let staleness = try reader.read(UInt64.self)
      let version = try reader.read(UInt64.self)
      let applied = try reader.read(UInt64.self)
      let rejected = try reader.read(UInt64.self)
      let count = Int(try reader.read(UInt64.self))
      guard count == sliceCount, count <= reader.remaining / 8 else {
        throw Failure.malformed("parameter count \(count) does not fit the model \(model)")
      }
      var parameters: [Double] = []
      parameters.reserveCapacity(count)
      for _ in 0..<count {
        let value = Double(bitPattern: try reader.read(UInt64.self))
        guard value.isFinite else { throw Failure.malformed("a parameter is NaN or infinite") }
        parameters.append(value)
      }
      let entries = Int(try reader.read(UInt32.self))
      guard entries <= reader.remaining / 13 else { throw Failure.malformed("sequence table size") }
      var sequences: [ServerCheckpoint.WorkerSequence] = []
      for _ in 0..<entries {
        let workerID = try reader.read(UInt32.self)
        let sequence = try reader.read(UInt64.self)
        var recent = AppliedBitmap()
        let words = format == 1 ? 1 : Int(try reader.read(UInt8.self))
        guard words <= AppliedBitmap.wordCount else {
          throw Failure.malformed("sequence window of \(words) words")
        }
        var last: UInt64 = 0
        for index in 0..<words {
          last = try reader.read(UInt64.self)
          recent.setWord(index, last)
        }
        // Format 2 leaves out trailing zero words, so each window has one encoding.
        guard format == 1 || words == 0 || last != 0 else {
          throw Failure.malformed("sequence window ends in a zero word")
        }
        sequences.append(.init(workerID: workerID, sequence: sequence, recent: recent))
      }
      var dataset: DatasetIdentity?
      if try reader.read(UInt8.self) == 1 {
        dataset = DatasetIdentity(
          rows: try reader.read(UInt64.self), fingerprint: try reader.read(UInt64.self))
      }
      var work: ServerCheckpoint.WorkProgress?
      if try reader.read(UInt8.self) == 1 {
        let epochs = try reader.read(UInt64.self)
        let chunkRows = try reader.read(UInt64.self)
        let epoch = try reader.read(UInt64.self)
        let chunkCount = Int(try reader.read(UInt64.self))
        guard chunkCount <= reader.remaining / 8, chunkRows >= 1 else {
          throw Failure.malformed("chunk table")
        }
        var nextRows: [UInt64] = []
        for _ in 0..<chunkCount { nextRows.append(try reader.read(UInt64.self)) }
        work = .init(epochs: epochs, chunkRows: chunkRows, epoch: epoch, nextRows: nextRows)
      }
      guard reader.remaining == 0 else {
        throw Failure.malformed("\(reader.remaining) unexpected bytes")
      }
      return ServerCheckpoint(
        mode: mode, optimizer: optimizer, requiredWorkers: required, staleness: staleness,
        shard: shard, model: model,
        version: version, gradientsApplied: applied, rejected: rejected, parameters: parameters,
        sequences: sequences, dataset: dataset, work: work)
    } catch let failure as Failure {
      throw failure
    } catch {
      throw .malformed("\(error)")
    }
  }
}

private func readOptimizer(_ reader: inout CheckpointReader, parameterCount: Int)
  throws(CheckpointCodec.Failure) -> Optimizer
{
  let kindIndex = Int(try reader.read(UInt8.self))
  guard kindIndex < OptimizerKind.allCases.count else { throw .malformed("optimizer kind") }
  func double(_ reader: inout CheckpointReader) throws(CheckpointCodec.Failure) -> Double {
    let value = Double(bitPattern: try reader.read(UInt64.self))
    guard value.isFinite else { throw .malformed("a non-finite optimizer value") }
    return value
  }
  let learningRate = try double(&reader)
  let beta1 = try double(&reader)
  let beta2 = try double(&reader)
  let epsilon = try double(&reader)
  let schedule: LearningRateSchedule
  switch try reader.read(UInt8.self) {
  case 0: schedule = .constant
  case 1: schedule = .step(every: try reader.read(UInt64.self), factor: try double(&reader))
  case 2: schedule = .cosine(total: try reader.read(UInt64.self), minimum: try double(&reader))
  default: throw .malformed("learning-rate schedule")
  }
  let step = try reader.read(UInt64.self)
  var moments: [[Double]] = []
  for _ in 0..<2 {
    let count = Int(try reader.read(UInt64.self))
    guard count <= reader.remaining / 8 else { throw .malformed("optimizer moment size") }
    var moment: [Double] = []
    moment.reserveCapacity(count)
    for _ in 0..<count { moment.append(try double(&reader)) }
    moments.append(moment)
  }
  do {
    let settings = try OptimizerSettings(
      kind: OptimizerKind.allCases[kindIndex], learningRate: learningRate, schedule: schedule,
      beta1: beta1, beta2: beta2, epsilon: epsilon)
    return try Optimizer(
      settings: settings, step: step, firstMoment: moments[0], secondMoment: moments[1],
      parameterCount: parameterCount)
  } catch {
    throw .malformed("\(error)")
  }
}

private struct CheckpointReader {
  let bytes: [UInt8]
  var offset = 0

  var remaining: Int { bytes.count - offset }

  mutating func read<T: FixedWidthInteger>(_: T.Type) throws(CheckpointCodec.Failure) -> T {
    let size = MemoryLayout<T>.size
    guard remaining >= size else { throw .malformed("ends early") }
    let value = bytes.withUnsafeBytes {
      T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
    offset += size
    return value
  }

  mutating func take(_ count: Int) throws(CheckpointCodec.Failure) -> [UInt8] {
    guard count >= 0, remaining >= count else { throw .malformed("ends early") }
    defer { offset += count }
    return Array(bytes[offset..<(offset + count)])
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
