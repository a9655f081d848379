import TrainingMath

// Gradients: `push` and `pushes` (a worker's gradients with their row numbers),
// `weights` (the server's answer, with its applied-below bitmap). A push
// decodes into the previous one's storage, and its values may be read in place.

/// A gradient pushed by a worker.
public struct GradientPush: Equatable, Sendable {
  /// The pushing worker.
  public var workerID: UInt32
  /// Per-worker sequence number, strictly increasing from 1.
  public var sequence: UInt64
  /// The weights version the gradient was computed at.
  public var computedAtVersion: UInt64
  /// The dataset rows whose mean loss this is the gradient of: numbers, not
  /// features, so a push does not grow with the feature count (whoever
  /// re-checks it reads the same data file, `DatasetIdentity`).
  public var rows: [Int]
  /// The gradient, in the server's layout.
  public var gradient: NamedTensors

  /// A gradient push.
  public init(
    workerID: UInt32, sequence: UInt64, computedAtVersion: UInt64, rows: [Int],
    gradient: NamedTensors
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.computedAtVersion = computedAtVersion
    self.rows = rows
    self.gradient = gradient
  }
}

extension GradientPush {
  /// A placeholder push with no rows and no tensors, to decode into.
  public static let empty = GradientPush(
    workerID: 0, sequence: 0, computedAtVersion: 0, rows: [], gradient: .empty)
}

/// The server's parameters at a version.
public struct WeightsReply: Equatable, Sendable {
  /// The version: the number of updates applied so far.
  public var version: UInt64
  /// The push sequence number this answers (0 for a join), so a worker that
  /// retried can tell a late duplicate reply from the one it waits for.
  public var acknowledgedSequence: UInt64
  /// In the answer to a join (or lease request): bit i set when sequence
  /// `acknowledgedSequence - 1 - i` was applied too (256 bits). A pipelined worker's push
  /// may have been overtaken by a later one; this tells it which of its pushes
  /// in flight the server has, so it pushes the others' rows again.
  public var appliedBelow: AppliedBitmap
  /// The parameters.
  public var parameters: NamedTensors

  /// Parameters at `version`, answering push `acknowledgedSequence`.
  public init(
    version: UInt64, acknowledgedSequence: UInt64 = 0,
    appliedBelow: AppliedBitmap = AppliedBitmap(), parameters: NamedTensors
  ) {
    self.version = version
    self.acknowledgedSequence = acknowledgedSequence
    self.appliedBelow = appliedBelow
    self.parameters = parameters
  }
}

extension GradientPush {
  /// A push body, as `push` carries it and `pushes` n times: `u32 worker id`,
  /// `u64 sequence`, `u64 computed-at version`, rows, gradient tensors.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(sequence)
    sink.write(computedAtVersion)
    RowNumbers.encode(rows, into: &sink)
    gradient.encode(into: &sink)
  }

  /// Decodes a push body into `push`, reusing its storage.
  static func decode(from reader: inout ByteReader, into push: inout GradientPush)
    throws(DecodeError)
  {
    var unused: BorrowedValues?
    try decode(from: &reader, into: &push, borrowing: false, borrowed: &unused)
  }

  /// Decodes a push body into `push`; with `borrowing`, its gradient's values
  /// may be read in place (`NamedTensors.decode(from:into:borrowing:borrowed:_:)`).
  static func decode(
    from reader: inout ByteReader, into push: inout GradientPush, borrowing: Bool,
    borrowed: inout BorrowedValues?
  ) throws(DecodeError) {
    push.workerID = try reader.read(UInt32.self, "worker id")
    push.sequence = try reader.read(UInt64.self, "sequence")
    guard push.sequence >= 1 else {
      throw .outOfRange(field: "sequence", value: "0", allowed: "sequence numbers start at 1")
    }
    push.computedAtVersion = try reader.read(UInt64.self, "computed-at version")
    try RowNumbers.decode(from: &reader, into: &push.rows)
    try NamedTensors.decode(
      from: &reader, into: &push.gradient, borrowing: borrowing, borrowed: &borrowed, "gradient")
  }

  /// A `pushes` body: `u16 n`, then n push bodies.
  static func encode<Sink: ByteSink>(_ pushes: [GradientPush], into sink: inout Sink) {
    sink.write(UInt16(pushes.count))
    for push in pushes { push.encode(into: &sink) }
  }

  /// Decodes a `pushes` body into `pushes`, reusing its elements' storage.
  static func decode(from reader: inout ByteReader, into pushes: inout [GradientPush])
    throws(DecodeError)
  {
    let maximumPushesPerFrame = WireCodec.maximumPushesPerFrame
    let count = Int(try reader.read(UInt16.self, "push count"))
    guard count >= 2, count <= maximumPushesPerFrame else {
      throw .outOfRange(
        field: "push count", value: String(count), allowed: "2...\(maximumPushesPerFrame)")
    }
    if pushes.count > count { pushes.removeLast(pushes.count - count) }
    for index in 0..<count {
      if index == pushes.count { pushes.append(.empty) }
      try decode(from: &reader, into: &pushes[index])
      guard index == 0 || pushes[index].workerID == pushes[0].workerID else {
        throw .invalid(field: "pushes[\(index)] worker id", reason: "differs from the first push's")
      }
      guard index == 0 || pushes[index].sequence == pushes[index - 1].sequence &+ 1 else {
        throw .invalid(
          field: "pushes[\(index)] sequence", reason: "does not follow the previous push's")
      }
    }
  }
}

extension WeightsReply {
  /// A weights body, as `weights` and `lease` carry it: `u64 version`,
  /// `u64 acknowledged sequence`, the applied-below bitmap, parameter tensors.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(version)
    sink.write(acknowledgedSequence)
    appliedBelow.encode(into: &sink)
    parameters.encode(into: &sink)
  }

  /// Decodes a weights body into `reply`, reusing its storage.
  static func decode(from reader: inout ByteReader, into reply: inout WeightsReply)
    throws(DecodeError)
  {
    reply.version = try reader.read(UInt64.self, "version")
    reply.acknowledgedSequence = try reader.read(UInt64.self, "acknowledged sequence")
    reply.appliedBelow = try AppliedBitmap.decode(from: &reader)
    try NamedTensors.decode(from: &reader, into: &reply.parameters, "weights")
  }
}

extension AppliedBitmap {
  /// A bitmap as `u8 n` and its n lowest words (trailing zero words left out),
  /// in `weights` and in checkpoints.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    let count = significantWordCount
    sink.write(UInt8(count))
    for index in 0..<count { sink.write(word(index)) }
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> AppliedBitmap {
    let count = Int(try reader.read(UInt8.self, "applied-below words"))
    guard count <= AppliedBitmap.wordCount else {
      throw .outOfRange(
        field: "applied-below words", value: String(count),
        allowed: "0...\(AppliedBitmap.wordCount)")
    }
    var bitmap = AppliedBitmap()
    var last: UInt64 = 0
    for index in 0..<count {
      last = try reader.read(UInt64.self, "applied-below word")
      bitmap.setWord(index, last)
    }
    guard count == 0 || last != 0 else {
      throw .invalid(field: "applied-below words", reason: "the last word is zero")
    }
    return bitmap
  }
}

/// Row numbers on the wire: `u32 n` (1 to `WireCodec.maximumSamples`), then n × `u64 row`, each below 2^48.
enum RowNumbers {
  /// Bytes of one encoded row number.
  static let encodedSize = 8

  /// Writes `rows`.
  static func encode<Sink: ByteSink>(_ rows: [Int], into sink: inout Sink) {
    sink.write(UInt32(rows.count))
    for row in rows { sink.write(UInt64(row)) }
  }

  /// Decodes row numbers into `rows`, reusing its capacity.
  static func decode(from reader: inout ByteReader, into rows: inout [Int]) throws(DecodeError) {
    let count = Int(try reader.read(UInt32.self, "row count"))
    guard count >= 1, count <= WireCodec.maximumSamples else {
      throw .outOfRange(
        field: "row count", value: String(count), allowed: "1...\(WireCodec.maximumSamples)")
    }
    try reader.requireElements(count, of: encodedSize, "rows")
    rows.removeAll(keepingCapacity: true)
    rows.reserveCapacity(count)
    for index in 0..<count {
      let row = try reader.read(UInt64.self, "row[\(index)]")
      guard row < WireCodec.maximumRow else {
        throw .outOfRange(field: "row[\(index)]", value: String(row), allowed: "below 2^48")
      }
      rows.append(Int(row))
    }
  }
}
