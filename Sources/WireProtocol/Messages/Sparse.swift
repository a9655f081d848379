import TrainingMath

// Sparse models: `sparse-pull` (keys), `sparse-rows` (their rows), `sparse-push`
// (keys with gradient rows), `sparse-ack`. Keys are sorted and unique; a list a
// worker will send again may be cached by the server under an id and referred to.

/// The keys of a sparse request: listed, or a list this worker sent before.
public enum KeyList: Equatable, Sendable {
  /// Sorted, unique keys. A nonzero `cacheAs` asks the server to keep the list
  /// under that id for this worker's later messages (key caching: a push names
  /// the list its pull sent instead of sending the keys again).
  case keys([UInt64], cacheAs: UInt32)
  /// The list this worker sent earlier with `cacheAs: id`, and its length
  /// (checked, so a stale id cannot be mistaken for another list).
  case cached(id: UInt32, count: UInt32)

  /// The number of keys.
  public var count: Int {
    switch self {
    case .keys(let keys, _): keys.count
    case .cached(_, let count): Int(count)
    }
  }
}

/// Worker → server: the rows of these keys, for the push with this sequence number.
public struct SparsePull: Equatable, Sendable {
  /// The pulling worker.
  public var workerID: UInt32
  /// The sequence number of the push these rows will be used for (the server keeps
  /// the rows it served for an audited push, so the audit sees what the worker saw).
  public var sequence: UInt64
  /// The keys, owned by this server shard.
  public var keys: KeyList

  /// A pull.
  public init(workerID: UInt32, sequence: UInt64, keys: KeyList) {
    self.workerID = workerID
    self.sequence = sequence
    self.keys = keys
  }
}

/// Server → worker: the rows of a pull's keys, in the pull's key order.
public struct SparseRows: Equatable, Sendable {
  /// The server's version when it read the rows.
  public var version: UInt64
  /// The pull's sequence number, so a late reply to a retried pull is told apart.
  public var sequence: UInt64
  /// Values per row.
  public var width: UInt32
  /// `keys × width` values.
  public var values: [Double]

  /// Rows read at `version` for pull `sequence`.
  public init(version: UInt64, sequence: UInt64, width: UInt32, values: [Double]) {
    self.version = version
    self.sequence = sequence
    self.width = width
    self.values = values
  }
}

/// Worker → server: the gradient of a batch's mean loss with respect to the rows
/// of these keys (this shard's part of it).
public struct SparsePush: Equatable, Sendable {
  /// The pushing worker.
  public var workerID: UInt32
  /// Per-worker sequence number, strictly increasing from 1 (the pull's).
  public var sequence: UInt64
  /// The version of the rows the gradient was computed at (this shard's pull reply).
  public var computedAtVersion: UInt64
  /// The dataset rows of the batch, for audits.
  public var rows: [Int]
  /// The keys, owned by this server shard.
  public var keys: KeyList
  /// `keys × width` gradient values.
  public var gradients: [Double]

  /// A push.
  public init(
    workerID: UInt32, sequence: UInt64, computedAtVersion: UInt64, rows: [Int], keys: KeyList,
    gradients: [Double]
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.computedAtVersion = computedAtVersion
    self.rows = rows
    self.keys = keys
    self.gradients = gradients
  }
}

/// Server → worker: a sparse push was applied (or had been: a retried push is acknowledged again).
public struct SparseAck: Equatable, Sendable {
  /// The server's version after applying it.
  public var version: UInt64
  /// The push acknowledged.
  public var sequence: UInt64

  /// An acknowledgement of push `sequence` at `version`.
  public init(version: UInt64, sequence: UInt64) {
    self.version = version
    self.sequence = sequence
  }
}

/// Server → coordinator: one applied sparse push with the rows the worker was
/// served for it: this shard's part (the coordinator joins the parts of every
/// shard of a push, `shards` of them, before it audits).
public struct SparseAuditRecord: Equatable, Sendable {
  /// The pushing worker.
  public var workerID: UInt32
  /// The push's sequence number.
  public var sequence: UInt64
  /// The version its rows were read at, and the version it was applied as.
  public var computedAtVersion: UInt64
  public var appliedAtVersion: UInt64
  /// The sparse model's wire name (`SparseModelSpec.wireName`).
  public var modelName: String
  /// The data the worker read, and the batch's rows in it.
  public var dataset: DatasetIdentity
  public var rows: [Int]
  /// This server shard, so the coordinator knows how many parts make a push.
  public var serverShard: Shard
  /// The keys this shard owns in the batch, sorted and unique.
  public var keys: [UInt64]
  /// The rows served for them (`keys × width`), and the gradient pushed for them.
  public var values: [Double]
  public var gradients: [Double]

  /// A record.
  public init(
    workerID: UInt32, sequence: UInt64, computedAtVersion: UInt64, appliedAtVersion: UInt64,
    modelName: String, dataset: DatasetIdentity, rows: [Int], serverShard: Shard,
    keys: [UInt64], values: [Double], gradients: [Double]
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.computedAtVersion = computedAtVersion
    self.appliedAtVersion = appliedAtVersion
    self.modelName = modelName
    self.dataset = dataset
    self.rows = rows
    self.serverShard = serverShard
    self.keys = keys
    self.values = values
    self.gradients = gradients
  }
}

/// Sparse messages' limits.
public enum SparseLimits {
  /// Most keys in one sparse message.
  public static let maximumKeys = 1 << 24
  /// Most values per row.
  public static let maximumWidth = 1 + SparseModelSpec.maximumFactors
}

extension KeyList {
  /// `u8 form`: 0 then `u32 cache id`, `u32 n`, n × `u64 key` (sorted, unique);
  /// or 1 then `u32 cache id` (nonzero), `u32 n`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    switch self {
    case .keys(let keys, let cacheAs):
      sink.write(UInt8(0))
      sink.write(cacheAs)
      sink.write(UInt32(keys.count))
      #if _endian(little)
        keys.withUnsafeBytes { sink.write(bytes: $0) }
      #else
        for key in keys { sink.write(key) }
      #endif
    case .cached(let id, let count):
      sink.write(UInt8(1))
      sink.write(id)
      sink.write(count)
    }
  }

  static func decode(from reader: inout ByteReader, _ field: String) throws(DecodeError) -> KeyList
  {
    let form = try reader.read(UInt8.self, "\(field) form")
    guard form <= 1 else {
      throw .outOfRange(
        field: "\(field) form", value: String(form), allowed: "0 (keys) or 1 (cached)")
    }
    let id = try reader.read(UInt32.self, "\(field) cache id")
    let count = try reader.read(UInt32.self, "\(field) count")
    guard count >= 1, count <= SparseLimits.maximumKeys else {
      throw .outOfRange(
        field: "\(field) count", value: String(count), allowed: "1...\(SparseLimits.maximumKeys)")
    }
    if form == 0 {
      try reader.requireElements(Int(count), of: 8, "\(field)")
      var keys = [UInt64]()
      keys.reserveCapacity(Int(count))
      var previous: UInt64 = 0
      for index in 0..<Int(count) {
        let key = try reader.read(UInt64.self, "\(field)[\(index)]")
        guard index == 0 || key > previous else {
          throw .invalid(
            field: "\(field)[\(index)]",
            reason: key == previous
              ? "duplicate key \(key)" : "keys are not sorted (\(key) after \(previous))")
        }
        keys.append(key)
        previous = key
      }
      return .keys(keys, cacheAs: id)
    } else {
      guard id != 0 else {
        throw .outOfRange(field: "\(field) cache id", value: "0", allowed: "1...2^32-1")
      }
      return .cached(id: id, count: count)
    }
  }
}

/// Values of sparse rows: `u32 n`, then n × `f64` (finite), in a frame of their own when large.
enum SparseValues {
  static func encode<Sink: ByteSink>(_ values: [Double], into sink: inout Sink) {
    sink.write(UInt32(values.count))
    sink.write(float64Values: values[...])
  }

  static func decode(from reader: inout ByteReader, _ field: String) throws(DecodeError) -> [Double]
  {
    let count = Int(try reader.read(UInt32.self, "\(field) count"))
    let limit = SparseLimits.maximumKeys * SparseLimits.maximumWidth
    guard count <= limit else {
      throw .outOfRange(field: "\(field) count", value: String(count), allowed: "0...\(limit)")
    }
    try reader.enterValues(byteCount: count * 8, field)
    try reader.requireElements(count, of: 8, field)
    let values = try [Double](unsafeUninitializedCapacity: count) {
      buffer, initialized throws(DecodeError) in
      try reader.readFiniteArray(into: buffer, field)
      initialized = count
    }
    try reader.leaveValues()
    return values
  }

  /// Checks that `values` hold `width` per key.
  static func check(_ values: [Double], keys: Int, _ field: String) throws(DecodeError) -> Int {
    guard keys > 0, values.count % keys == 0,
      (1...SparseLimits.maximumWidth).contains(values.count / keys)
    else {
      throw .invalid(
        field: "\(field) count",
        reason:
          "\(values.count) values for \(keys) keys is not 1...\(SparseLimits.maximumWidth) per key")
    }
    return values.count / keys
  }
}

extension SparsePull {
  /// `u32 worker id`, `u64 sequence`, key list.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(sequence)
    keys.encode(into: &sink)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> SparsePull {
    let workerID = try reader.read(UInt32.self, "worker id")
    let sequence = try reader.read(UInt64.self, "sequence")
    guard sequence >= 1 else {
      throw .outOfRange(field: "sequence", value: "0", allowed: "sequence numbers start at 1")
    }
    return SparsePull(
      workerID: workerID, sequence: sequence, keys: try KeyList.decode(from: &reader, "keys"))
  }
}

extension SparseRows {
  /// `u64 version`, `u64 sequence`, `u32 width`, values.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(version)
    sink.write(sequence)
    sink.write(width)
    SparseValues.encode(values, into: &sink)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> SparseRows {
    let version = try reader.read(UInt64.self, "version")
    let sequence = try reader.read(UInt64.self, "sequence")
    let width = try reader.read(UInt32.self, "width")
    guard (1...UInt32(SparseLimits.maximumWidth)).contains(width) else {
      throw .outOfRange(
        field: "width", value: String(width), allowed: "1...\(SparseLimits.maximumWidth)")
    }
    let values = try SparseValues.decode(from: &reader, "values")
    guard !values.isEmpty, values.count % Int(width) == 0 else {
      throw .invalid(
        field: "values count", reason: "\(values.count) values is not whole rows of \(width)")
    }
    return SparseRows(version: version, sequence: sequence, width: width, values: values)
  }
}

extension SparsePush {
  /// `u32 worker id`, `u64 sequence`, `u64 computed-at version`, rows, key list, gradient values.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(sequence)
    sink.write(computedAtVersion)
    RowNumbers.encode(rows, into: &sink)
    keys.encode(into: &sink)
    SparseValues.encode(gradients, into: &sink)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> SparsePush {
    let workerID = try reader.read(UInt32.self, "worker id")
    let sequence = try reader.read(UInt64.self, "sequence")
    guard sequence >= 1 else {
      throw .outOfRange(field: "sequence", value: "0", allowed: "sequence numbers start at 1")
    }
    let computedAt = try reader.read(UInt64.self, "computed-at version")
    var rows: [Int] = []
    try RowNumbers.decode(from: &reader, into: &rows)
    let keys = try KeyList.decode(from: &reader, "keys")
    let gradients = try SparseValues.decode(from: &reader, "gradients")
    _ = try SparseValues.check(gradients, keys: keys.count, "gradients")
    return SparsePush(
      workerID: workerID, sequence: sequence, computedAtVersion: computedAt, rows: rows, keys: keys,
      gradients: gradients)
  }
}

extension SparseAck {
  /// `u64 version`, `u64 sequence`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(version)
    sink.write(sequence)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> SparseAck {
    SparseAck(
      version: try reader.read(UInt64.self, "version"),
      sequence: try reader.read(UInt64.self, "sequence"))
  }
}

extension SparseAuditRecord {
  /// `u32 worker id`, `u64 sequence`, `u64 computed-at`, `u64 applied-at`, model
  /// name, dataset identity, rows, server shard, keys (a listed key list, not
  /// cached), served values, gradient values.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(sequence)
    sink.write(computedAtVersion)
    sink.write(appliedAtVersion)
    sink.write(modelName, lengthAs: UInt8.self)
    sink.write(dataset.rows)
    sink.write(dataset.fingerprint)
    RowNumbers.encode(rows, into: &sink)
    serverShard.encode(into: &sink)
    KeyList.keys(keys, cacheAs: 0).encode(into: &sink)
    SparseValues.encode(values, into: &sink)
    SparseValues.encode(gradients, into: &sink)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> SparseAuditRecord {
    let workerID = try reader.read(UInt32.self, "worker id")
    let sequence = try reader.read(UInt64.self, "sequence")
    let computedAt = try reader.read(UInt64.self, "computed-at version")
    let appliedAt = try reader.read(UInt64.self, "applied-at version")
    let modelName = try reader.readSparseModelName("model name")
    let datasetRows = try reader.read(UInt64.self, "dataset rows")
    let fingerprint = try reader.read(UInt64.self, "dataset fingerprint")
    var rows: [Int] = []
    try RowNumbers.decode(from: &reader, into: &rows)
    let shard = try Shard.decode(from: &reader)
    guard case .keys(let keys, 0) = try KeyList.decode(from: &reader, "keys") else {
      throw .invalid(field: "keys", reason: "an audit record lists its keys, uncached")
    }
    let values = try SparseValues.decode(from: &reader, "values")
    let width = try SparseValues.check(values, keys: keys.count, "values")
    let gradients = try SparseValues.decode(from: &reader, "gradients")
    guard gradients.count == values.count else {
      throw .invalid(
        field: "gradients count",
        reason: "\(gradients.count) gradients for \(keys.count) rows of \(width)")
    }
    return SparseAuditRecord(
      workerID: workerID, sequence: sequence, computedAtVersion: computedAt,
      appliedAtVersion: appliedAt,
      modelName: modelName, dataset: DatasetIdentity(rows: datasetRows, fingerprint: fingerprint),
      rows: rows, serverShard: shard, keys: keys, values: values, gradients: gradients)
  }
}

extension ByteReader {
  /// A sparse model's wire name (`str8`), as `SparseModelSpec.wireName` spells
  /// it: `sparse-logreg.hB` or `fm-K.hB` (one spelling per model, so the bytes
  /// decode and encode back unchanged).
  mutating func readSparseModelName(_ field: @autoclosure () -> String) throws(DecodeError)
    -> String
  {
    let name = try readString(lengthAs: UInt8.self, maximum: Int(UInt8.max), field())
    let spec: SparseModelSpec?
    do { spec = try SparseModelSpec(wireName: name) } catch { spec = nil }
    guard let spec, spec.wireName == name else {
      throw .invalid(
        field: field(), reason: "\"\(name)\" is not a sparse model (sparse-logreg.hB or fm-K.hB)")
    }
    return name
  }
}
