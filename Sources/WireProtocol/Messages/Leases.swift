import TrainingMath

// Leases: leased work (`lease` with the current weights, `no-lease`); a worker
// asks with `lease-request`, whose body is a worker id (`WorkerIDBody`).

/// Rows leased to a worker: train on `firstRow ..< firstRow + rowCount`, in
/// order, starting from the current weights that come with the lease (a worker
/// that waited for rows would otherwise hold stale ones).
public struct Lease: Equatable, Sendable {
  /// The epoch the rows belong to, 0-based.
  public var epoch: UInt64
  /// First row of the lease.
  public var firstRow: UInt64
  /// Number of rows.
  public var rowCount: UInt64
  /// The current weights.
  public var weights: WeightsReply

  /// A lease.
  public init(epoch: UInt64, firstRow: UInt64, rowCount: UInt64, weights: WeightsReply) {
    self.epoch = epoch
    self.firstRow = firstRow
    self.rowCount = rowCount
    self.weights = weights
  }

  /// The leased rows.
  public var rows: Range<Int> { Int(firstRow)..<Int(firstRow + rowCount) }
}

/// Why there is no lease for now.
public struct NoLease: Equatable, Sendable {
  /// Every epoch is done: the worker should leave.
  public var finished: Bool
  /// Otherwise, ask again after this many milliseconds (others hold the last rows of the epoch).
  public var retryAfterMilliseconds: UInt32

  /// A no-lease answer.
  public init(finished: Bool, retryAfterMilliseconds: UInt32) {
    self.finished = finished
    self.retryAfterMilliseconds = retryAfterMilliseconds
  }
}

extension Lease {
  /// `u64 epoch`, `u64 first row`, `u64 row count`, then a weights body.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(epoch)
    sink.write(firstRow)
    sink.write(rowCount)
    weights.encode(into: &sink)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> Lease {
    let epoch = try reader.read(UInt64.self, "lease epoch")
    let first = try reader.read(UInt64.self, "lease first row")
    let count = try reader.read(UInt64.self, "lease row count")
    guard count >= 1, first < WireCodec.maximumRow, count < WireCodec.maximumRow - first else {
      throw .outOfRange(
        field: "lease rows", value: "\(first)+\(count)", allowed: "1 or more rows below 2^48")
    }
    var weights = WeightsReply(version: 0, parameters: .empty)
    try WeightsReply.decode(from: &reader, into: &weights)
    return Lease(epoch: epoch, firstRow: first, rowCount: count, weights: weights)
  }
}

extension NoLease {
  /// `u8 finished`, `u32 retry after ms`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(UInt8(finished ? 1 : 0))
    sink.write(retryAfterMilliseconds)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> NoLease {
    let finished = try reader.readFlag("finished")
    let retry = try reader.read(UInt32.self, "retry after")
    return NoLease(finished: finished, retryAfterMilliseconds: retry)
  }
}
