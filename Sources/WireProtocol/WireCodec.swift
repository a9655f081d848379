import TrainingMath

/// The versioned binary codec. A frame is a 4-byte header — magic `P` `S`,
/// protocol version, message type — and the message body; integers and
/// Float64 bits are little-endian. Decoding validates every field and refuses
/// trailing bytes. The byte layout is specified in `docs/protocol.md`.
///
/// This file holds the entry points, the header and the dispatch by message
/// type; each payload's encoder and decoder sit beside its type in
/// `Messages/` (`Membership`, `Gradients`, `Tensors`, `Status`, `Audits`,
/// `Leases`, `Evaluations`, `Errors`).
public enum WireCodec {
  /// The protocol version this build writes and accepts.
  public static let protocolVersion: UInt8 = 7
  /// The magic bytes `P`, `S`.
  public static let magic: (UInt8, UInt8) = (0x50, 0x53)
  /// Most tensors in one message.
  public static let maximumTensors = 256
  /// Most samples in one message.
  public static let maximumSamples = 1 << 20
  /// Row numbers are below 2^48.
  public static let maximumRow: UInt64 = 1 << 48
  /// Most frames in one message: the first, and for each of up to two sets of
  /// 256 tensors a values frame and the frame that goes on after it.
  public static let maximumFrames = 1 + 2 * 2 * maximumTensors
  /// Most workers listed in one status.
  public static let maximumWorkers = Shard.maximumCount

  /// The encoded size of `message` in bytes.
  public static func encodedSize(of message: WireMessage) -> Int {
    var counter = ByteCounter()
    encode(message, into: &counter)
    return counter.count
  }

  /// `message` as bytes.
  public static func encode(_ message: WireMessage) -> [UInt8] {
    let size = encodedSize(of: message)
    return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
      var writer = ByteWriter(UnsafeMutableRawBufferPointer(buffer))
      encode(message, into: &writer)
      initialized = writer.offset
    }
  }

  /// `message` as frames, each a copy: values of `threshold` bytes or more in
  /// frames of their own, as a socket sends them (for tests and the fuzzer).
  public static func encodeFrames(
    _ message: WireMessage, threshold: Int = FrameSplitter.defaultThreshold
  ) -> [[UInt8]] {
    var splitter = FrameSplitter(threshold: threshold)
    encode(message, into: &splitter)
    return splitter.frames.map { frame in
      switch frame {
      case .bytes(let bytes): Array(bytes)
      case .values(let values): values.withUnsafeBytes { Array($0) }
      }
    }
  }

  /// Decodes a message sent as `frames` (the first and those after it).
  public static func decode(frames: [[UInt8]]) throws(DecodeError) -> WireMessage {
    try withFrames(frames) { (first, later) throws(DecodeError) in
      try decode(first, later: later)
    }
  }

  /// Calls `body` with the bytes of `frames`, the first and those after it, as
  /// a socket hands them to a decoder (for tests and the fuzzer).
  public static func withFrames<R>(
    _ frames: [[UInt8]],
    _ body: (UnsafeRawBufferPointer, [UnsafeRawBufferPointer]) throws(DecodeError) -> R
  ) throws(DecodeError) -> R {
    guard let first = frames.first else {
      throw .truncated(field: "magic", needed: 1, remaining: 0)
    }
    // Pin every frame's storage for the call.
    func pinned(_ index: Int, _ later: [UnsafeRawBufferPointer]) throws(DecodeError) -> R {
      guard index < frames.count else {
        let result = first.withUnsafeBytes { buffer in
          Result { () throws(DecodeError) in try body(buffer, later) }
        }
        return try result.get()
      }
      let result = frames[index].withUnsafeBytes { buffer in
        Result { () throws(DecodeError) in try pinned(index + 1, later + [buffer]) }
      }
      return try result.get()
    }
    return try pinned(1, [])
  }

  /// Writes `message` into `sink`.
  public static func encode<Sink: ByteSink>(_ message: WireMessage, into sink: inout Sink) {
    sink.write(magic.0)
    sink.write(magic.1)
    sink.write(protocolVersion)
    sink.write(message.type.rawValue)
    switch message {
    case .join(let join):
      join.encode(into: &sink)
    case .push(let push):
      push.encode(into: &sink)
    case .pushes(let pushes):
      GradientPush.encode(pushes, into: &sink)
    case .weights(let reply):
      reply.encode(into: &sink)
    case .statusRequest:
      break
    case .status(let status):
      status.encode(into: &sink)
    case .auditSubscribe(let subscription):
      subscription.encode(into: &sink)
    case .subscription(let state):
      state.encode(into: &sink)
    case .auditRecord(let record):
      record.encode(into: &sink)
    case .leave(let workerID), .left(let workerID), .heartbeat(let workerID),
      .leaseRequest(let workerID):
      WorkerIDBody.encode(workerID, into: &sink)
    case .lease(let lease):
      lease.encode(into: &sink)
    case .noLease(let answer):
      answer.encode(into: &sink)
    case .auditResult(let result):
      result.encode(into: &sink)
    case .evaluation(let report):
      report.encode(into: &sink)
    case .error(let reply):
      reply.encode(into: &sink)
    case .sparsePull(let pull):
      pull.encode(into: &sink)
    case .sparseRows(let rows):
      rows.encode(into: &sink)
    case .sparsePush(let push):
      push.encode(into: &sink)
    case .sparseAck(let ack):
      ack.encode(into: &sink)
    case .sparseAuditRecord(let record):
      record.encode(into: &sink)
    }
  }

  /// Decodes one frame, validating every field.
  public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> WireMessage {
    let result = bytes.withUnsafeBytes { buffer in
      Result { () throws(DecodeError) in try decode(buffer) }
    }
    return try result.get()
  }

  /// Decodes one message in place, validating every field: a frame, or the
  /// first frame and the frames after it when tensor values travel in frames
  /// of their own.
  public static func decode(
    _ buffer: UnsafeRawBufferPointer, later: [UnsafeRawBufferPointer] = []
  ) throws(DecodeError) -> WireMessage {
    let result = later.withUnsafeBufferPointer { later in
      Result { () throws(DecodeError) in
        var reader = ByteReader(buffer, later: later)
        let message = try decodeBody(try readHeader(&reader), &reader)
        try reader.expectEnd()
        return message
      }
    }
    return try result.get()
  }

  /// Tensor storage worth keeping from one message for the next: up to 2^17
  /// elements (1 MiB of Float64). A holder of a larger message should let it go
  /// between messages: keeping it would double a big model's memory, and at that
  /// size an allocation is cheap next to moving the bytes.
  public static let reusableElementLimit = 1 << 17

  /// Decodes one message like `decode(_:later:)`, but when it and `message` are
  /// both pushes, or both weights, it decodes into `message`'s arrays and keeps
  /// its strings that still match: a loop that decodes every frame into the same
  /// variable allocates nothing in steady state. Storage someone else still
  /// shares is copied first, never overwritten. On error `message` holds some
  /// other, valid message.
  public static func decode(
    _ buffer: UnsafeRawBufferPointer, later: [UnsafeRawBufferPointer] = [],
    reusing message: inout WireMessage
  ) throws(DecodeError) {
    var unused: BorrowedValues?
    try decode(buffer, later: later, reusing: &message, borrowing: false, pushValues: &unused)
  }

  /// Decodes like `decode(_:later:reusing:)`, and a push whose gradient tensors
  /// are all Float64 with their values in aligned frames of their own without
  /// copying those: they are checked where they are and handed over in
  /// `pushValues`, borrowed from the frames (`BorrowedValues`: valid only
  /// during the call that received them); the push's gradient then holds its
  /// layout and no values. Otherwise `pushValues` is nil. (A server applies
  /// such a gradient straight from libzmq's buffers.)
  public static func decode(
    _ buffer: UnsafeRawBufferPointer, later: [UnsafeRawBufferPointer],
    reusing message: inout WireMessage,
    pushValuesInPlace pushValues: inout BorrowedValues?
  ) throws(DecodeError) {
    try decode(buffer, later: later, reusing: &message, borrowing: true, pushValues: &pushValues)
  }

  private static func decode(
    _ buffer: UnsafeRawBufferPointer, later: [UnsafeRawBufferPointer],
    reusing message: inout WireMessage, borrowing: Bool,
    pushValues: inout BorrowedValues?
  ) throws(DecodeError) {
    guard !later.isEmpty else {
      return try decode(
        buffer, later: UnsafeBufferPointer(start: nil, count: 0), reusing: &message,
        borrowing: borrowing, pushValues: &pushValues)
    }
    let result = later.withUnsafeBufferPointer { later in
      Result { () throws(DecodeError) in
        try decode(
          buffer, later: later, reusing: &message, borrowing: borrowing, pushValues: &pushValues)
      }
    }
    try result.get()
  }

  private static func decode(
    _ buffer: UnsafeRawBufferPointer, later: UnsafeBufferPointer<UnsafeRawBufferPointer>,
    reusing message: inout WireMessage, borrowing: Bool,
    pushValues: inout BorrowedValues?
  ) throws(DecodeError) {
    pushValues = nil
    var reader = ByteReader(buffer, later: later)
    let type = try readHeader(&reader)
    // Bind the payload, then drop the enum's reference: the arrays are then
    // uniquely referenced and are written in place.
    if type == .push {
      var push: GradientPush
      if case .push(let previous) = message { push = previous } else { push = .empty }
      message = .statusRequest
      do {
        try GradientPush.decode(
          from: &reader, into: &push, borrowing: borrowing, borrowed: &pushValues)
        try reader.expectEnd()
      } catch {
        pushValues = nil
        throw error
      }
      message = .push(push)
    } else if type == .pushes, case .pushes(var pushes) = message {
      message = .statusRequest
      try GradientPush.decode(from: &reader, into: &pushes)
      try reader.expectEnd()
      message = .pushes(pushes)
    } else if type == .weights, case .weights(var reply) = message {
      message = .statusRequest
      try WeightsReply.decode(from: &reader, into: &reply)
      try reader.expectEnd()
      message = .weights(reply)
    } else {
      message = try decodeBody(type, &reader)
      try reader.expectEnd()
    }
  }

  /// Reads and checks the 4-byte header; returns the message type.
  private static func readHeader(_ reader: inout ByteReader) throws(DecodeError) -> MessageType {
    let first = try reader.read(UInt8.self, "magic")
    let second = try reader.read(UInt8.self, "magic")
    guard first == magic.0, second == magic.1 else { throw .badMagic }
    let version = try reader.read(UInt8.self, "protocol version")
    guard version == protocolVersion else { throw .unsupportedVersion(version) }
    let typeByte = try reader.read(UInt8.self, "message type")
    guard let type = MessageType(rawValue: typeByte) else { throw .unknownType(typeByte) }
    return type
  }

  /// Most gradients in one `pushes` frame.
  public static let maximumPushesPerFrame = 256

  private static func decodeBody(_ type: MessageType, _ reader: inout ByteReader)
    throws(DecodeError) -> WireMessage
  {
    switch type {
    case .join:
      return .join(try Join.decode(from: &reader))
    case .push:
      var push = GradientPush.empty
      try GradientPush.decode(from: &reader, into: &push)
      return .push(push)
    case .pushes:
      var pushes: [GradientPush] = []
      try GradientPush.decode(from: &reader, into: &pushes)
      return .pushes(pushes)
    case .weights:
      var reply = WeightsReply(version: 0, parameters: .empty)
      try WeightsReply.decode(from: &reader, into: &reply)
      return .weights(reply)
    case .statusRequest:
      return .statusRequest
    case .status:
      return .status(try ServerStatus.decode(from: &reader))
    case .auditSubscribe:
      return .auditSubscribe(try AuditSubscription.decode(from: &reader))
    case .subscription:
      return .subscription(try SubscriptionState.decode(from: &reader))
    case .auditRecord:
      return .auditRecord(try AuditRecord.decode(from: &reader))
    case .leave:
      return .leave(workerID: try WorkerIDBody.decode(from: &reader))
    case .left:
      return .left(workerID: try WorkerIDBody.decode(from: &reader))
    case .heartbeat:
      return .heartbeat(workerID: try WorkerIDBody.decode(from: &reader))
    case .leaseRequest:
      return .leaseRequest(workerID: try WorkerIDBody.decode(from: &reader))
    case .lease:
      return .lease(try Lease.decode(from: &reader))
    case .noLease:
      return .noLease(try NoLease.decode(from: &reader))
    case .auditResult:
      return .auditResult(try AuditResult.decode(from: &reader))
    case .evaluation:
      return .evaluation(try EvaluationReport.decode(from: &reader))
    case .error:
      return .error(try ErrorReply.decode(from: &reader))
    case .sparsePull:
      return .sparsePull(try SparsePull.decode(from: &reader))
    case .sparseRows:
      return .sparseRows(try SparseRows.decode(from: &reader))
    case .sparsePush:
      return .sparsePush(try SparsePush.decode(from: &reader))
    case .sparseAck:
      return .sparseAck(try SparseAck.decode(from: &reader))
    case .sparseAuditRecord:
      return .sparseAuditRecord(try SparseAuditRecord.decode(from: &reader))
    }
  }
}
