import TrainingMath

// Membership: `join`, and the worker-id bodies of `leave`, `left` and
// `heartbeat` (and `lease-request`); the shard both joins and statuses carry.

/// A worker's request to join.
public struct Join: Equatable, Sendable {
  /// The worker's id, unique in the run (its shard index by convention).
  public var workerID: UInt32
  /// The worker's shard.
  public var shard: Shard
  /// The model the worker computes gradients of.
  public var model: ModelDescriptor
  /// The data the worker reads: every worker of a run must read the same.
  public var dataset: DatasetIdentity

  /// A join request.
  public init(workerID: UInt32, shard: Shard, model: ModelDescriptor, dataset: DatasetIdentity) {
    self.workerID = workerID
    self.shard = shard
    self.model = model
    self.dataset = dataset
  }
}

/// Which data a worker reads: its row count and a fingerprint of its values,
/// so the server can refuse a worker that reads a different file.
public struct DatasetIdentity: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// Rows in the whole dataset.
  public var rows: UInt64
  /// `Dataset.fingerprint` of the rows.
  public var fingerprint: UInt64

  /// An identity.
  public init(rows: UInt64, fingerprint: UInt64) {
    self.rows = rows
    self.fingerprint = fingerprint
  }

  public var description: String {
    "\(rows) rows (fingerprint \(String(fingerprint, radix: 16)))"
  }
}

extension Join {
  /// `u32 worker id`, shard, model descriptor, `u64 dataset rows`, `u64 dataset fingerprint`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    shard.encode(into: &sink)
    model.encode(into: &sink)
    sink.write(dataset.rows)
    sink.write(dataset.fingerprint)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> Join {
    let workerID = try reader.read(UInt32.self, "worker id")
    let shard = try Shard.decode(from: &reader)
    let model = try ModelDescriptor.decode(from: &reader)
    let rows = try reader.read(UInt64.self, "dataset rows")
    guard rows >= 1, rows < WireCodec.maximumRow else {
      throw .outOfRange(field: "dataset rows", value: String(rows), allowed: "1...2^48-1")
    }
    let fingerprint = try reader.read(UInt64.self, "dataset fingerprint")
    return Join(
      workerID: workerID, shard: shard, model: model,
      dataset: DatasetIdentity(rows: rows, fingerprint: fingerprint))
  }
}

/// The body of `leave`, `left`, `heartbeat` and `lease-request`: a `u32 worker id`.
enum WorkerIDBody {
  static func encode<Sink: ByteSink>(_ workerID: UInt32, into sink: inout Sink) {
    sink.write(workerID)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> UInt32 {
    try reader.read(UInt32.self, "worker id")
  }
}

extension Shard {
  /// `u32 index`, `u32 count`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(UInt32(index))
    sink.write(UInt32(count))
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> Shard {
    let index = try reader.read(UInt32.self, "shard index")
    let count = try reader.read(UInt32.self, "shard count")
    do {
      return try Shard(index: Int(index), count: Int(count))
    } catch {
      throw .invalid(field: "shard", reason: error.description)
    }
  }
}
