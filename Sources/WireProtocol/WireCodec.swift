import TrainingMath

/// The versioned binary codec. A frame is a 4-byte header — magic `P` `S`,
/// protocol version, message type — and the message body; integers and
/// Float64 bits are little-endian. Decoding validates every field and refuses
/// trailing bytes. The byte layout is specified in `docs/protocol.md`.
public enum WireCodec {
  /// The protocol version this build writes and accepts.
  public static let protocolVersion: UInt8 = 4
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
  /// Bytes of one worker's record in a status: `u32 id`, shard (`u32 index`,
  /// `u32 count`), `u64 pushes applied`, `u64 last sequence`, `u64 staleness`.
  /// The encoder writes exactly this many (WireCodecTests checks) and the decoder bounds the
  /// worker count by it, so the two cannot drift apart.
  public static let workerRecordByteCount = 4 + 4 + 4 + 8 + 8 + 8

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
      sink.write(join.workerID)
      sink.write(UInt32(join.shard.index))
      sink.write(UInt32(join.shard.count))
      encode(join.model, into: &sink)
      sink.write(join.dataset.rows)
      sink.write(join.dataset.fingerprint)
    case .push(let push):
      encodeBody(of: push, into: &sink)
    case .pushes(let pushes):
      sink.write(UInt16(pushes.count))
      for push in pushes { encodeBody(of: push, into: &sink) }
    case .weights(let reply):
      encodeBody(of: reply, into: &sink)
    case .statusRequest:
      break
    case .status(let status):
      sink.write(status.mode.rawValue)
      sink.write(status.version)
      sink.write(status.gradientsApplied)
      sink.write(status.rejected)
      sink.write(status.learningRate)
      sink.write(status.requiredWorkers)
      sink.write(status.modelName, lengthAs: UInt8.self)
      encode(status.parameters, into: &sink)
      sink.write(UInt32(status.workers.count))
      for worker in status.workers { encodeRecord(of: worker, into: &sink) }
      sink.write(status.workersLeft)
      sink.write(status.auditRecordsSent)
      sink.write(status.epochs)
      sink.write(status.epoch)
      sink.write(status.rowsAppliedInEpoch)
      sink.write(status.datasetRows)
      sink.write(status.workersDead)
      sink.write(status.optimizer, lengthAs: UInt16.self)
      sink.write(status.currentLearningRate)
      sink.write(status.staleness)
      sink.write(UInt32(status.serverShard.index))
      sink.write(UInt32(status.serverShard.count))
      sink.write(status.parameterOffset)
      sink.write(status.totalParameters)
      sink.write(status.auditsReported)
      sink.write(status.auditsFailed)
      sink.write(UInt8(status.lastAudit == nil ? 0 : 1))
      if let last = status.lastAudit { encode(last, into: &sink) }
      encode(status.checkpoints, into: &sink)
      encode(status.resume, into: &sink)
    case .auditSubscribe(let subscription):
      sink.write(subscription.every)
      sink.write(subscription.leaseMilliseconds)
    case .subscription(let state):
      sink.write(state.every)
      sink.write(state.recordsSent)
      sink.write(state.recordsDropped)
    case .auditRecord(let record):
      sink.write(record.workerID)
      sink.write(record.sequence)
      sink.write(record.computedAtVersion)
      sink.write(record.appliedAtVersion)
      sink.write(record.modelName, lengthAs: UInt8.self)
      encode(record.weights, into: &sink)
      encode(record.samples, into: &sink)
      encode(record.gradient, into: &sink)
    case .leave(let workerID), .left(let workerID), .heartbeat(let workerID),
      .leaseRequest(let workerID):
      sink.write(workerID)
    case .lease(let lease):
      sink.write(lease.epoch)
      sink.write(lease.firstRow)
      sink.write(lease.rowCount)
      encodeBody(of: lease.weights, into: &sink)
    case .noLease(let answer):
      sink.write(UInt8(answer.finished ? 1 : 0))
      sink.write(answer.retryAfterMilliseconds)
    case .auditResult(let result):
      encode(result, into: &sink)
    case .error(let reply):
      sink.write(reply.code.rawValue)
      sink.write(reply.message, lengthAs: UInt16.self)
    }
  }

  private static func encode<Sink: ByteSink>(_ result: AuditResult, into sink: inout Sink) {
    sink.write(result.workerID)
    sink.write(result.sequence)
    sink.write(UInt8(result.passed ? 1 : 0))
    sink.write(result.maximumRelativeError)
    sink.write(UInt8(result.conclusive ? 1 : 0))
    sink.write(result.gradientMagnitude)
  }

  private static func decodeAuditResult(_ reader: inout ByteReader) throws(DecodeError)
    -> AuditResult
  {
    let worker = try reader.read(UInt32.self, "audit worker id")
    let sequence = try reader.read(UInt64.self, "audit sequence")
    let passed = try readFlag(&reader, "audit passed")
    let error = try readNonNegative(&reader, "audit relative error")
    let conclusive = try readFlag(&reader, "audit conclusive")
    let magnitude = try readNonNegative(&reader, "audit gradient magnitude")
    return AuditResult(
      workerID: worker, sequence: sequence, passed: passed, maximumRelativeError: error,
      conclusive: conclusive, gradientMagnitude: magnitude)
  }

  /// A `u8` that must be 0 or 1.
  private static func readFlag(_ reader: inout ByteReader, _ field: String) throws(DecodeError)
    -> Bool
  {
    let byte = try reader.read(UInt8.self, field)
    guard byte <= 1 else { throw .outOfRange(field: field, value: String(byte), allowed: "0 or 1") }
    return byte == 1
  }

  /// A finite `f64` that must not be negative.
  private static func readNonNegative(_ reader: inout ByteReader, _ field: String)
    throws(DecodeError) -> Double
  {
    let value = try reader.readFinite(field)
    guard value >= 0 else { throw .outOfRange(field: field, value: "\(value)", allowed: ">= 0") }
    return value
  }

  static func encode<Sink: ByteSink>(_ model: ModelDescriptor, into sink: inout Sink) {
    sink.write(model.name, lengthAs: UInt8.self)
    sink.write(UInt16(model.layout.count))
    for spec in model.layout {
      sink.write(spec.name, lengthAs: UInt8.self)
      sink.write(UInt64(spec.count))
      sink.write(spec.elementType.rawValue)
    }
  }

  /// A bitmap as `u8 n` and its n lowest words (trailing zero words left out).
  private static func encode<Sink: ByteSink>(_ bitmap: AppliedBitmap, into sink: inout Sink) {
    let count = bitmap.significantWordCount
    sink.write(UInt8(count))
    for index in 0..<count { sink.write(bitmap.word(index)) }
  }

  private static func decodeBitmap(_ reader: inout ByteReader) throws(DecodeError)
    -> AppliedBitmap
  {
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

  /// A weights body, as `weights` and `lease` carry it.
  private static func encodeBody<Sink: ByteSink>(of reply: WeightsReply, into sink: inout Sink) {
    sink.write(reply.version)
    sink.write(reply.acknowledgedSequence)
    encode(reply.appliedBelow, into: &sink)
    encode(reply.parameters, into: &sink)
  }

  private static func encodeBody<Sink: ByteSink>(of push: GradientPush, into sink: inout Sink) {
    sink.write(push.workerID)
    sink.write(push.sequence)
    sink.write(push.computedAtVersion)
    encode(push.samples, into: &sink)
    encode(push.gradient, into: &sink)
  }

  private static func encode<Sink: ByteSink>(_ samples: [Sample], into sink: inout Sink) {
    sink.write(UInt32(samples.count))
    for sample in samples {
      sink.write(UInt64(sample.index))
      sink.write(sample.x)
      sink.write(sample.label)
    }
  }

  private static func encode<Sink: ByteSink>(_ tensors: NamedTensors, into sink: inout Sink) {
    sink.write(UInt16(tensors.layout.count))
    var offset = 0
    for spec in tensors.layout {
      sink.write(spec.name, lengthAs: UInt8.self)
      sink.write(spec.elementType.rawValue)
      sink.write(UInt64(spec.count))
      switch spec.elementType {
      case .float64:
        sink.write(float64Values: tensors.values[offset..<(offset + spec.count)])
      case .float32:
        for value in tensors.values[offset..<(offset + spec.count)] {
          sink.write(Float(value).bitPattern)
        }
      }
      offset += spec.count
    }
  }

  /// A model descriptor as bytes (the layout `join` carries), for checkpoints.
  static func encode(model: ModelDescriptor) -> [UInt8] {
    var counter = ByteCounter()
    encode(model, into: &counter)
    return [UInt8](unsafeUninitializedCapacity: counter.count) { buffer, initialized in
      var writer = ByteWriter(UnsafeMutableRawBufferPointer(buffer))
      encode(model, into: &writer)
      initialized = writer.offset
    }
  }

  /// Decodes exactly one model descriptor.
  static func decode(model bytes: [UInt8]) throws(DecodeError) -> ModelDescriptor {
    let result = bytes.withUnsafeBytes { buffer in
      Result { () throws(DecodeError) in
        var reader = ByteReader(buffer)
        let model = try decodeModel(&reader)
        guard reader.remaining == 0 else { throw .trailingBytes(reader.remaining) }
        return model
      }
    }
    return try result.get()
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
    var unused: [UnsafeBufferPointer<Double>]?
    try decode(buffer, later: later, reusing: &message, borrowing: false, pushValues: &unused)
  }

  /// Decodes like `decode(_:later:reusing:)`, and a push whose gradient tensors
  /// are all Float64 with their values in aligned frames of their own without
  /// copying those: they are checked where they are and handed over in
  /// `pushValues`, in layout order, valid only as long as the frames; the push's
  /// gradient then holds its layout and no values. Otherwise `pushValues` is nil.
  /// (A server applies such a gradient straight from libzmq's buffers.)
  public static func decode(
    _ buffer: UnsafeRawBufferPointer, later: [UnsafeRawBufferPointer],
    reusing message: inout WireMessage,
    pushValuesInPlace pushValues: inout [UnsafeBufferPointer<Double>]?
  ) throws(DecodeError) {
    try decode(buffer, later: later, reusing: &message, borrowing: true, pushValues: &pushValues)
  }

  private static func decode(
    _ buffer: UnsafeRawBufferPointer, later: [UnsafeRawBufferPointer],
    reusing message: inout WireMessage, borrowing: Bool,
    pushValues: inout [UnsafeBufferPointer<Double>]?
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
    pushValues: inout [UnsafeBufferPointer<Double>]?
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
        try decodePushBody(&reader, into: &push, borrowing: borrowing, borrowed: &pushValues)
        try reader.expectEnd()
      } catch {
        pushValues = nil
        throw error
      }
      message = .push(push)
    } else if type == .pushes, case .pushes(var pushes) = message {
      message = .statusRequest
      try decodePushesBody(&reader, into: &pushes)
      try reader.expectEnd()
      message = .pushes(pushes)
    } else if type == .weights, case .weights(var reply) = message {
      message = .statusRequest
      try decodeWeightsBody(&reader, into: &reply)
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

  private static func decodePushBody(_ reader: inout ByteReader, into push: inout GradientPush)
    throws(DecodeError)
  {
    var unused: [UnsafeBufferPointer<Double>]?
    try decodePushBody(&reader, into: &push, borrowing: false, borrowed: &unused)
  }

  private static func decodePushBody(
    _ reader: inout ByteReader, into push: inout GradientPush, borrowing: Bool,
    borrowed: inout [UnsafeBufferPointer<Double>]?
  ) throws(DecodeError) {
    push.workerID = try reader.read(UInt32.self, "worker id")
    push.sequence = try reader.read(UInt64.self, "sequence")
    guard push.sequence >= 1 else {
      throw .outOfRange(field: "sequence", value: "0", allowed: "sequence numbers start at 1")
    }
    push.computedAtVersion = try reader.read(UInt64.self, "computed-at version")
    try decodeSamples(&reader, into: &push.samples)
    try decodeTensors(
      &reader, into: &push.gradient, borrowing: borrowing, borrowed: &borrowed, "gradient")
  }

  /// Most gradients in one `pushes` frame.
  public static let maximumPushesPerFrame = 256

  /// Decodes a `pushes` body into `pushes`, reusing its elements' storage.
  private static func decodePushesBody(
    _ reader: inout ByteReader, into pushes: inout [GradientPush]
  )
    throws(DecodeError)
  {
    let count = Int(try reader.read(UInt16.self, "push count"))
    guard count >= 2, count <= maximumPushesPerFrame else {
      throw .outOfRange(
        field: "push count", value: String(count), allowed: "2...\(maximumPushesPerFrame)")
    }
    if pushes.count > count { pushes.removeLast(pushes.count - count) }
    for index in 0..<count {
      if index == pushes.count { pushes.append(.empty) }
      try decodePushBody(&reader, into: &pushes[index])
      guard index == 0 || pushes[index].workerID == pushes[0].workerID else {
        throw .invalid(field: "pushes[\(index)] worker id", reason: "differs from the first push's")
      }
      guard index == 0 || pushes[index].sequence == pushes[index - 1].sequence &+ 1 else {
        throw .invalid(
          field: "pushes[\(index)] sequence", reason: "does not follow the previous push's")
      }
    }
  }

  private static func decodeWeightsBody(_ reader: inout ByteReader, into reply: inout WeightsReply)
    throws(DecodeError)
  {
    reply.version = try reader.read(UInt64.self, "version")
    reply.acknowledgedSequence = try reader.read(UInt64.self, "acknowledged sequence")
    reply.appliedBelow = try decodeBitmap(&reader)
    try decodeTensors(&reader, into: &reply.parameters, "weights")
  }

  private static func decodeBody(_ type: MessageType, _ reader: inout ByteReader)
    throws(DecodeError) -> WireMessage
  {
    switch type {
    case .join:
      let workerID = try reader.read(UInt32.self, "worker id")
      let shard = try decodeShard(&reader)
      let model = try decodeModel(&reader)
      let rows = try reader.read(UInt64.self, "dataset rows")
      guard rows >= 1, rows < maximumRow else {
        throw .outOfRange(field: "dataset rows", value: String(rows), allowed: "1...2^48-1")
      }
      let fingerprint = try reader.read(UInt64.self, "dataset fingerprint")
      return .join(
        Join(
          workerID: workerID, shard: shard, model: model,
          dataset: DatasetIdentity(rows: rows, fingerprint: fingerprint)))
    case .push:
      var push = GradientPush.empty
      try decodePushBody(&reader, into: &push)
      return .push(push)
    case .pushes:
      var pushes: [GradientPush] = []
      try decodePushesBody(&reader, into: &pushes)
      return .pushes(pushes)
    case .weights:
      var reply = WeightsReply(version: 0, parameters: .empty)
      try decodeWeightsBody(&reader, into: &reply)
      return .weights(reply)
    case .statusRequest:
      return .statusRequest
    case .status:
      return .status(try decodeStatus(&reader))
    case .auditSubscribe:
      let every = try reader.read(UInt64.self, "every")
      let lease = try reader.read(UInt32.self, "lease")
      return .auditSubscribe(AuditSubscription(every: every, leaseMilliseconds: lease))
    case .subscription:
      let every = try reader.read(UInt64.self, "every")
      let sent = try reader.read(UInt64.self, "records sent")
      let dropped = try reader.read(UInt64.self, "records dropped")
      return .subscription(
        SubscriptionState(every: every, recordsSent: sent, recordsDropped: dropped))
    case .auditRecord:
      let workerID = try reader.read(UInt32.self, "worker id")
      let sequence = try reader.read(UInt64.self, "sequence")
      let computedAt = try reader.read(UInt64.self, "computed-at version")
      let appliedAt = try reader.read(UInt64.self, "applied-at version")
      let modelName = try decodeName(&reader, "model name")
      let weights = try decodeTensors(&reader, "weights")
      var samples: [Sample] = []
      try decodeSamples(&reader, into: &samples)
      let gradient = try decodeTensors(&reader, "gradient")
      guard gradient.layout == weights.layout else {
        throw .invalid(field: "gradient", reason: "layout differs from the weights' layout")
      }
      return .auditRecord(
        AuditRecord(
          workerID: workerID, sequence: sequence, computedAtVersion: computedAt,
          appliedAtVersion: appliedAt, modelName: modelName, weights: weights, samples: samples,
          gradient: gradient))
    case .leave:
      return .leave(workerID: try reader.read(UInt32.self, "worker id"))
    case .left:
      return .left(workerID: try reader.read(UInt32.self, "worker id"))
    case .heartbeat:
      return .heartbeat(workerID: try reader.read(UInt32.self, "worker id"))
    case .leaseRequest:
      return .leaseRequest(workerID: try reader.read(UInt32.self, "worker id"))
    case .lease:
      let epoch = try reader.read(UInt64.self, "lease epoch")
      let first = try reader.read(UInt64.self, "lease first row")
      let count = try reader.read(UInt64.self, "lease row count")
      guard count >= 1, first < maximumRow, count < maximumRow - first else {
        throw .outOfRange(
          field: "lease rows", value: "\(first)+\(count)", allowed: "1 or more rows below 2^48")
      }
      var weights = WeightsReply(version: 0, parameters: .empty)
      try decodeWeightsBody(&reader, into: &weights)
      return .lease(Lease(epoch: epoch, firstRow: first, rowCount: count, weights: weights))
    case .noLease:
      let finished = try reader.read(UInt8.self, "finished")
      guard finished <= 1 else {
        throw .outOfRange(field: "finished", value: String(finished), allowed: "0 or 1")
      }
      let retry = try reader.read(UInt32.self, "retry after")
      return .noLease(NoLease(finished: finished == 1, retryAfterMilliseconds: retry))
    case .auditResult:
      return .auditResult(try decodeAuditResult(&reader))
    case .error:
      let raw = try reader.read(UInt16.self, "error code")
      guard let code = ErrorCode(rawValue: raw) else {
        throw .outOfRange(field: "error code", value: String(raw), allowed: "a known code")
      }
      let message = try reader.readString(
        lengthAs: UInt16.self, maximum: ErrorReply.maximumMessageLength, "error message")
      return .error(ErrorReply(code: code, message: message))
    }
  }

  private static func decodeShard(_ reader: inout ByteReader) throws(DecodeError) -> Shard {
    let index = try reader.read(UInt32.self, "shard index")
    let count = try reader.read(UInt32.self, "shard count")
    do {
      return try Shard(index: Int(index), count: Int(count))
    } catch {
      throw .invalid(field: "shard", reason: error.description)
    }
  }

  // Field names are autoclosures: they are only built into strings for an error.
  private static func decodeName(
    _ reader: inout ByteReader, reusing previous: String? = nil,
    _ field: @autoclosure () -> String
  ) throws(DecodeError) -> String {
    let name = try reader.readString(
      lengthAs: UInt8.self, maximum: TensorSpec.maximumNameLength, reusing: previous, field())
    guard TensorSpec.isValidName(name) else {
      throw .invalid(
        field: field(), reason: "\"\(name)\" is not 1-64 characters of A-Z a-z 0-9 . _ -")
    }
    return name
  }

  private static func decodeLayoutCount(
    _ reader: inout ByteReader, _ field: @autoclosure () -> String
  ) throws(DecodeError) -> Int {
    let count = Int(try reader.read(UInt16.self, "\(field()) tensor count"))
    guard count >= 1, count <= maximumTensors else {
      throw .outOfRange(
        field: "\(field()) tensor count", value: String(count), allowed: "1...\(maximumTensors)")
    }
    return count
  }

  static func decodeModel(_ reader: inout ByteReader) throws(DecodeError)
    -> ModelDescriptor
  {
    let name = try decodeName(&reader, "model name")
    let count = try decodeLayoutCount(&reader, "model")
    var layout: [TensorSpec] = []
    for _ in 0..<count {
      let tensorName = try decodeName(&reader, "tensor name")
      let elements = try reader.read(UInt64.self, "tensor size")
      guard elements >= 1, elements <= UInt64(Int32.max) else {
        throw .outOfRange(
          field: "tensor \(tensorName) size", value: String(elements), allowed: "1...\(Int32.max)")
      }
      let typeByte = try reader.read(UInt8.self, "tensor \(tensorName) element type")
      guard let type = ElementType(rawValue: typeByte) else {
        throw .outOfRange(
          field: "tensor \(tensorName) element type", value: String(typeByte),
          allowed: "1 (float64) or 2 (float32)")
      }
      layout.append(TensorSpec(name: tensorName, count: Int(elements), elementType: type))
    }
    try checkUniqueNames(layout)
    return ModelDescriptor(name: name, layout: layout)
  }

  /// At most 256 tensors: comparing pairs needs no allocation, unlike a set.
  private static func checkUniqueNames(_ layout: [TensorSpec]) throws(DecodeError) {
    for index in layout.indices {
      for earlier in 0..<index where layout[earlier].name == layout[index].name {
        throw .invalid(field: "tensor name", reason: "\"\(layout[index].name)\" appears twice")
      }
    }
  }

  private static func decodeTensors(_ reader: inout ByteReader, _ field: @autoclosure () -> String)
    throws(DecodeError) -> NamedTensors
  {
    var tensors = NamedTensors.empty
    try decodeTensors(&reader, into: &tensors, field())
    return tensors
  }

  /// Decodes named tensors into `tensors`, reusing its arrays' capacity and the
  /// names and specs that are unchanged.
  private static func decodeTensors(
    _ reader: inout ByteReader, into tensors: inout NamedTensors,
    _ field: @autoclosure () -> String
  ) throws(DecodeError) {
    var unused: [UnsafeBufferPointer<Double>]?
    try decodeTensors(&reader, into: &tensors, borrowing: false, borrowed: &unused, field())
  }

  /// Decodes named tensors as above; with `borrowing`, when every tensor is
  /// Float64 with its values in an aligned frame of their own, the values are
  /// checked where they are and not copied: `borrowed` gets them, in layout
  /// order, and `tensors` gets the layout and no values.
  ///
  /// One pass copies values into the storage at hand while they fit. From the
  /// first tensor that does not fit (or that may be read in place) on, values
  /// are skipped and read in a second pass once the whole layout is known: into
  /// new storage sized once, so a larger message is not zero-filled first, or
  /// where they are.
  private static func decodeTensors(
    _ reader: inout ByteReader, into tensors: inout NamedTensors, borrowing: Bool,
    borrowed: inout [UnsafeBufferPointer<Double>]?, _ field: @autoclosure () -> String
  ) throws(DecodeError) {
    borrowed = nil
    let count = try decodeLayoutCount(&reader, field())
    // Take the arrays out so that they are uniquely referenced while written.
    var layout = tensors.layout
    var values = tensors.values
    tensors = .empty
    if layout.count != count {
      layout.removeAll(keepingCapacity: true)
      layout.reserveCapacity(count)
    }
    var total = 0
    var deferred: DeferredValues?
    #if _endian(little)
      var inPlace = borrowing
    #else
      var inPlace = false
    #endif
    for position in 0..<count {
      let header = reader.position
      let previous = position < layout.count ? layout[position] : nil
      let name = try decodeName(&reader, reusing: previous?.name, "\(field()) tensor name")
      let tag = try reader.read(UInt8.self, "\(field()) \(name) element type")
      guard let type = ElementType(rawValue: tag) else {
        throw .outOfRange(
          field: "\(field()) \(name) element type", value: String(tag),
          allowed: "1 (float64) or 2 (float32)")
      }
      let elements = try reader.read(UInt64.self, "\(field()) \(name) size")
      let (byteCount, overflow) = Int(clamping: elements).multipliedReportingOverflow(
        by: type.byteCount)
      let ownFrame = try reader.enterValues(
        byteCount: overflow ? .max : byteCount, "\(field()) \(name) data")
      inPlace = inPlace && ownFrame && type == .float64 && reader.isAlignedForFloat64
      guard elements >= 1, elements <= UInt64(reader.remaining / type.byteCount) else {
        throw .truncated(
          field: "\(field()) \(name) data",
          needed: Int(clamping: elements) &* type.byteCount, remaining: reader.remaining)
      }
      let end = total + Int(elements)
      // A value that is not finite defers this tensor too: the second pass
      // reports it after any error in the rest of the layout, as it does when
      // nothing could be copied in the first pass (the storage at hand must not
      // change which error a message gets).
      if deferred == nil && !inPlace && end <= values.count
        && values.withUnsafeMutableBufferPointer({ all in
          let target = UnsafeMutableBufferPointer(rebasing: all[total..<end])
          do throws(DecodeError) {
            switch type {
            case .float64: try reader.readFiniteArray(into: target, "\(field()) \(name)")
            case .float32: try reader.readFiniteFloat32Array(into: target, "\(field()) \(name)")
            }
            return true
          } catch {
            return false
          }
        })
      {
        // Copied.
      } else {
        if deferred == nil {
          deferred = DeferredValues(header: header, element: total, position: position)
        }
        reader.skip(byteCount)
      }
      try reader.leaveValues()
      total = end
      let spec = TensorSpec(name: name, count: Int(elements), elementType: type)
      if position < layout.count {
        if layout[position] != spec { layout[position] = spec }
      } else {
        layout.append(spec)
      }
    }
    try checkUniqueNames(layout)
    if let deferred {
      if inPlace {
        reader.seek(to: deferred.header)
        borrowed = try readValuesInPlace(&reader, deferred, layout: layout, field())
        values.removeAll(keepingCapacity: true)
        // The layout without its values: only `borrowed` holds them. Built
        // apart and assigned whole: assigning `tensors` field by field slowed
        // every decode through this function by a third.
        var withoutValues = NamedTensors.empty
        withoutValues.layout = layout
        withoutValues.values = values
        tensors = withoutValues
        return
      }
      let end = reader.position
      reader.seek(to: deferred.header)
      try readDeferredValues(
        &reader, deferred, layout: layout, total: total, into: &values, field())
      reader.seek(to: end)
    } else if values.count > total {
      values.removeLast(values.count - total)
    }
    tensors = NamedTensors(layout: layout, values: values)
  }

  /// Where `decodeTensors` left values for a second pass: a tensor's header,
  /// its first flat element, its position in the layout.
  private struct DeferredValues {
    var header: ByteReader.Position
    var element: Int
    var position: Int
  }

  /// The second pass, when every tensor's values are in an aligned frame of
  /// their own: each checked where it is. Kept out of `decodeTensors`, whose
  /// first pass, on every message, compiles tighter without it.
  @inline(never)
  private static func readValuesInPlace(
    _ reader: inout ByteReader, _ deferred: DeferredValues, layout: [TensorSpec],
    _ field: String
  ) throws(DecodeError) -> [UnsafeBufferPointer<Double>] {
    var parts: [UnsafeBufferPointer<Double>] = []
    parts.reserveCapacity(layout.count)
    for spec in layout[deferred.position...] {
      skipHeader(of: spec, &reader)
      try reader.enterValues(byteCount: spec.count * 8, "\(field) \(spec.name) data")
      parts.append(try reader.readFiniteInPlace(count: spec.count, "\(field) \(spec.name)"))
      try reader.leaveValues()
    }
    return parts
  }

  /// The second pass otherwise: the deferred tensors' values copied into
  /// `values` when it holds `total` elements, or else into new storage sized
  /// once, after the values the first pass read (never zero-filled first).
  @inline(never)
  private static func readDeferredValues(
    _ reader: inout ByteReader, _ deferred: DeferredValues, layout: [TensorSpec], total: Int,
    into values: inout [Double], _ field: String
  ) throws(DecodeError) {
    let rest = layout[deferred.position...]
    if values.count >= total {
      values.removeLast(values.count - total)
      try values.withUnsafeMutableBufferPointer { (all) throws(DecodeError) in
        let target = UnsafeMutableBufferPointer(rebasing: all[deferred.element...])
        try readTensorValues(&reader, layout: rest, into: target, field)
      }
      return
    }
    var failure: DecodeError?
    let old = values
    values = [Double](unsafeUninitializedCapacity: total) { target, initialized in
      do throws(DecodeError) {
        old.withUnsafeBufferPointer { old in
          _ = target.initialize(fromContentsOf: old[..<deferred.element])
        }
        let tail = UnsafeMutableBufferPointer(rebasing: target[deferred.element...])
        try readTensorValues(&reader, layout: rest, into: tail, field)
        initialized = total
      } catch {
        failure = error
      }
    }
    if let failure { throw failure }
  }

  /// Moves past a tensor's header already read and checked once: a length
  /// byte, the name, the type tag, the size. (Its values follow, in this frame
  /// or one of their own.)
  private static func skipHeader(of spec: TensorSpec, _ reader: inout ByteReader) {
    reader.skip(1 + spec.name.utf8.count + 1 + 8)
  }

  /// The values of tensors whose `layout` was just read from the same bytes,
  /// each copied and checked into its part of `target`.
  private static func readTensorValues(
    _ reader: inout ByteReader, layout: ArraySlice<TensorSpec>,
    into target: UnsafeMutableBufferPointer<Double>,
    _ field: @autoclosure () -> String
  ) throws(DecodeError) {
    var filled = 0
    for spec in layout {
      skipHeader(of: spec, &reader)
      try reader.enterValues(
        byteCount: spec.count * spec.elementType.byteCount, "\(field()) \(spec.name) data")
      let part = UnsafeMutableBufferPointer(rebasing: target[filled..<(filled + spec.count)])
      switch spec.elementType {
      case .float64: try reader.readFiniteArray(into: part, "\(field()) \(spec.name)")
      case .float32: try reader.readFiniteFloat32Array(into: part, "\(field()) \(spec.name)")
      }
      try reader.leaveValues()
      filled += spec.count
    }
  }

  private static func decodeSamples(_ reader: inout ByteReader, into samples: inout [Sample])
    throws(DecodeError)
  {
    let count = Int(try reader.read(UInt32.self, "sample count"))
    guard count >= 1, count <= maximumSamples else {
      throw .outOfRange(
        field: "sample count", value: String(count), allowed: "1...\(maximumSamples)")
    }
    try reader.requireElements(count, of: 24, "samples")
    samples.removeAll(keepingCapacity: true)
    samples.reserveCapacity(count)
    for index in 0..<count {
      let row = try reader.read(UInt64.self, "sample[\(index)] row")
      guard row < maximumRow else {
        throw .outOfRange(field: "sample[\(index)] row", value: String(row), allowed: "below 2^48")
      }
      let x = try reader.readFinite("sample[\(index)] x")
      let label = try reader.readFinite("sample[\(index)] label")
      samples.append(Sample(index: Int(row), x: x, label: label))
    }
  }

  /// Writes one worker's record of a status: `workerRecordByteCount` bytes.
  private static func encodeRecord<Sink: ByteSink>(of worker: WorkerStatus, into sink: inout Sink) {
    sink.write(worker.workerID)
    sink.write(UInt32(worker.shard.index))
    sink.write(UInt32(worker.shard.count))
    sink.write(worker.pushesApplied)
    sink.write(worker.lastSequence)
    sink.write(worker.lastStaleness)
  }

  private static func decodeStatus(_ reader: inout ByteReader) throws(DecodeError) -> ServerStatus {
    let modeByte = try reader.read(UInt8.self, "mode")
    guard let mode = ConsistencyMode(rawValue: modeByte) else {
      throw .outOfRange(
        field: "mode", value: String(modeByte), allowed: "1 (async), 2 (sync) or 3 (ssp)")
    }
    let version = try reader.read(UInt64.self, "version")
    let applied = try reader.read(UInt64.self, "gradients applied")
    let rejected = try reader.read(UInt64.self, "rejected")
    let learningRate = try reader.readFinite("learning rate")
    let required = try reader.read(UInt32.self, "required workers")
    let modelName = try decodeName(&reader, "model name")
    let parameters = try decodeTensors(&reader, "parameters")
    let workerCount = Int(try reader.read(UInt32.self, "worker count"))
    guard workerCount <= maximumWorkers,
      workerCount <= reader.remaining / workerRecordByteCount
    else {
      throw .outOfRange(
        field: "worker count", value: String(workerCount),
        allowed: "at most \(maximumWorkers) and what fits")
    }
    var workers: [WorkerStatus] = []
    for _ in 0..<workerCount {
      let id = try reader.read(UInt32.self, "worker id")
      let shard = try decodeShard(&reader)
      let pushes = try reader.read(UInt64.self, "worker pushes")
      let last = try reader.read(UInt64.self, "worker last sequence")
      let staleness = try reader.read(UInt64.self, "worker staleness")
      workers.append(
        WorkerStatus(
          workerID: id, shard: shard, pushesApplied: pushes, lastSequence: last,
          lastStaleness: staleness))
    }
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
    let serverShard = try decodeShard(&reader)
    let offset = try reader.read(UInt64.self, "parameter offset")
    let total = try reader.read(UInt64.self, "total parameters")
    let auditsReported = try reader.read(UInt64.self, "audits reported")
    let auditsFailed = try reader.read(UInt64.self, "audits failed")
    let hasLast = try reader.read(UInt8.self, "last audit present")
    guard hasLast <= 1 else {
      throw .outOfRange(field: "last audit present", value: String(hasLast), allowed: "0 or 1")
    }
    let lastAudit = hasLast == 1 ? try decodeAuditResult(&reader) : nil
    let checkpoints = try decodeCheckpointHealth(&reader)
    // Compared without adding: a hostile offset near 2^64 must not overflow.
    guard offset <= total, UInt64(parameters.values.count) <= total - offset else {
      throw .outOfRange(
        field: "parameter offset", value: String(offset), allowed: "within the \(total) parameters")
    }
    let resume = try decodeResume(&reader)
    return ServerStatus(
      mode: mode, version: version, gradientsApplied: applied, rejected: rejected,
      learningRate: learningRate, requiredWorkers: required, modelName: modelName,
      parameters: parameters, workers: workers, workersLeft: left, auditRecordsSent: audits,
      epochs: epochs, epoch: epoch, rowsAppliedInEpoch: rowsApplied, datasetRows: datasetRows,
      workersDead: dead, optimizer: optimizer, currentLearningRate: currentRate,
      staleness: staleness, serverShard: serverShard, parameterOffset: offset,
      totalParameters: total, auditsReported: auditsReported, auditsFailed: auditsFailed,
      lastAudit: lastAudit, checkpoints: checkpoints, resume: resume)
  }
}
