import Testing
import TrainingMath

@testable import WireProtocol

/// Little-endian bytes of a hand-built frame, for refusals the encoder cannot produce.
struct FrameBytes {
  var bytes: [UInt8]

  /// A frame of `type` with this build's header.
  init(_ type: MessageType) {
    bytes = [0x50, 0x53, WireCodec.protocolVersion, type.rawValue]
  }

  mutating func u8(_ value: UInt8) { bytes.append(value) }
  mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
  mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
  mutating func f64(_ value: Double) { u64(value.bitPattern) }
  mutating func str8(_ text: String) {
    u8(UInt8(text.utf8.count))
    bytes += Array(text.utf8)
  }
  /// A listed key list: form 0, cache id, count, keys.
  mutating func keys(_ keys: [UInt64], cacheAs id: UInt32 = 0, count: UInt32? = nil) {
    u8(0)
    u32(id)
    u32(count ?? UInt32(keys.count))
    for key in keys { u64(key) }
  }
  /// Values: count, then each.
  mutating func values(_ values: [Double], count: UInt32? = nil) {
    u32(count ?? UInt32(values.count))
    for value in values { f64(value) }
  }
}

/// The sparse messages of protocol 7, with awkward values where they fit.
let everySparseMessage: [WireMessage] = [
  .sparsePull(SparsePull(workerID: 3, sequence: 1, keys: .keys([0, 5, .max], cacheAs: 9))),
  .sparsePull(SparsePull(workerID: .max, sequence: .max, keys: .keys([1 << 40], cacheAs: 0))),
  .sparsePull(SparsePull(workerID: 3, sequence: 2, keys: .cached(id: 9, count: 3))),
  .sparseRows(SparseRows(version: 0, sequence: 1, width: 2, values: [0.5, -0.0, 1e-300, -2])),
  .sparseRows(
    SparseRows(
      version: .max, sequence: .max, width: UInt32(SparseLimits.maximumWidth),
      values: (0..<SparseLimits.maximumWidth).map { Double($0) / 7 })),
  .sparsePush(
    SparsePush(
      workerID: 3, sequence: 1, computedAtVersion: 0, rows: [0, 1 << 40],
      keys: .keys([2, 7], cacheAs: 1), gradients: [0.25, -.leastNonzeroMagnitude])),
  .sparsePush(
    SparsePush(
      workerID: 3, sequence: 2, computedAtVersion: 4, rows: [9], keys: .cached(id: 1, count: 2),
      gradients: [1, 2, 3, 4])),
  .sparseAck(SparseAck(version: 5, sequence: 2)),
  .sparseAck(SparseAck(version: .max, sequence: 0)),
  .sparseAuditRecord(
    SparseAuditRecord(
      workerID: 3, sequence: 2, computedAtVersion: 4, appliedAtVersion: 5,
      modelName: "fm-2.h20", dataset: DatasetIdentity(rows: 1 << 41, fingerprint: 9),
      rows: [9, 10], serverShard: try! Shard(index: 1, count: 2), keys: [3, 1 << 20],
      values: [0, 0.1, -0.2, 0, 0.3, 0.4], gradients: [1, 2, 3, 4, 5, -6])),
  .sparseAuditRecord(
    SparseAuditRecord(
      workerID: 0, sequence: 1, computedAtVersion: 0, appliedAtVersion: 1,
      modelName: "sparse-logreg.h40", dataset: DatasetIdentity(rows: 1, fingerprint: 0),
      rows: [0], serverShard: .whole, keys: [1 << 40], values: [0], gradients: [-0.5])),
]

@Suite struct SparseCodecTests {
  @Test func everySparseMessageRoundTripsExactly() throws {
    for message in everySparseMessage {
      let bytes = WireCodec.encode(message)
      #expect(bytes.count == WireCodec.encodedSize(of: message))
      #expect(try WireCodec.decode(bytes) == message, "\(message.type)")
      var previous = WireMessage.push(.empty)
      try bytes.withUnsafeBytes { try WireCodec.decode($0, reusing: &previous) }
      #expect(previous == message)
    }
    #expect(
      [19, 20, 21, 22, 23]
        == [MessageType.sparsePull, .sparseRows, .sparsePush, .sparseAck, .sparseAuditRecord].map(
          \.rawValue))
    #expect(
      everySparseMessage.map { "\($0.type)" }.uniqued()
        == ["sparse-pull", "sparse-rows", "sparse-push", "sparse-ack", "sparse-audit-record"])
  }

  /// 10,000 keys of 8 values: the values travel in frames of their own at the
  /// default threshold, the keys stay in the first frame, and every message
  /// decodes from its frames to itself, bit for bit.
  @Test func largeValuesTravelInTheirOwnFrames() throws {
    var generator = SplitMix64(seed: 7)
    let keys = Set((0..<10_000).map { _ in generator.next() >> 24 }).sorted()
    let values = (0..<(keys.count * 8)).map { _ in generator.nextGaussian() }
    let gradients = values.map { -$0 / 3 }
    let messages: [WireMessage] = [
      .sparsePull(SparsePull(workerID: 1, sequence: 1, keys: .keys(keys, cacheAs: 1))),
      .sparseRows(SparseRows(version: 3, sequence: 1, width: 8, values: values)),
      .sparsePush(
        SparsePush(
          workerID: 1, sequence: 1, computedAtVersion: 3, rows: Array(0..<64),
          keys: .cached(id: 1, count: UInt32(keys.count)), gradients: gradients)),
      .sparsePush(
        SparsePush(
          workerID: 1, sequence: 1, computedAtVersion: 3, rows: [0],
          keys: .keys(keys, cacheAs: 0), gradients: gradients)),
      .sparseAuditRecord(
        SparseAuditRecord(
          workerID: 1, sequence: 1, computedAtVersion: 3, appliedAtVersion: 4,
          modelName: "fm-7.h24", dataset: DatasetIdentity(rows: 100, fingerprint: 1),
          rows: [0], serverShard: .whole, keys: keys, values: values, gradients: gradients)),
    ]
    let valueBytes = values.count * 8
    for message in messages {
      let frames = WireCodec.encodeFrames(message)
      #expect(Array(frames.joined()) == WireCodec.encode(message))
      let decoded = try WireCodec.decode(frames: frames)
      #expect(decoded == message, "\(message.type)")
      switch message {
      case .sparsePull:
        #expect(frames.count == 1)
      case .sparseRows, .sparsePush:
        #expect(frames.count == 2 && frames[1].count == valueBytes)
      case .sparseAuditRecord:
        // Served values, the gradients' count, the gradients.
        #expect(frames.count == 4 && frames[1].count == valueBytes && frames[2].count == 4)
        #expect(frames[3].count == valueBytes)
      default: Issue.record("unexpected \(message.type)")
      }
    }
    guard
      case .sparseRows(let rows) = try WireCodec.decode(frames: WireCodec.encodeFrames(messages[1]))
    else { return }
    #expect(rows.values.map(\.bitPattern) == values.map(\.bitPattern))
  }

  @Test func everyTruncationIsRefused() {
    for message in everySparseMessage {
      let bytes = WireCodec.encode(message)
      for length in 0..<bytes.count {
        #expect(throws: DecodeError.self, "\(message.type) cut to \(length)") {
          try WireCodec.decode(Array(bytes.prefix(length)))
        }
      }
      #expect(throws: DecodeError.trailingBytes(1), "\(message.type)") {
        try WireCodec.decode(bytes + [0])
      }
    }
  }

  /// A pull of `keys` (a listed key list with `count`), by hand.
  private func pull(_ keys: [UInt64], cacheAs id: UInt32 = 0, count: UInt32? = nil) -> [UInt8] {
    var frame = FrameBytes(.sparsePull)
    frame.u32(1)
    frame.u64(1)
    frame.keys(keys, cacheAs: id, count: count)
    return frame.bytes
  }

  @Test func keyListRefusalsNameTheirField() {
    #expect(
      throws: DecodeError.invalid(field: "keys[2]", reason: "keys are not sorted (4 after 9)")
    ) { try WireCodec.decode(pull([1, 9, 4])) }
    #expect(throws: DecodeError.invalid(field: "keys[1]", reason: "duplicate key 7")) {
      try WireCodec.decode(pull([7, 7]))
    }
    #expect(
      throws: DecodeError.outOfRange(
        field: "keys count", value: "0", allowed: "1...\(SparseLimits.maximumKeys)")
    ) { try WireCodec.decode(pull([])) }
    let tooMany = UInt32(SparseLimits.maximumKeys + 1)
    #expect(
      throws: DecodeError.outOfRange(
        field: "keys count", value: "\(tooMany)", allowed: "1...\(SparseLimits.maximumKeys)")
    ) { try WireCodec.decode(pull([1], count: tooMany)) }
    // A count the frame does not hold fails before anything is allocated.
    #expect(throws: DecodeError.truncated(field: "keys", needed: 8 * 1000, remaining: 8)) {
      try WireCodec.decode(pull([1], count: 1000))
    }
    var cachedZero = FrameBytes(.sparsePull)
    cachedZero.u32(1)
    cachedZero.u64(1)
    cachedZero.u8(1)
    cachedZero.u32(0)
    cachedZero.u32(3)
    #expect(
      throws: DecodeError.outOfRange(field: "keys cache id", value: "0", allowed: "1...2^32-1")
    ) { try WireCodec.decode(cachedZero.bytes) }
    // An unknown form is named before anything after it is read.
    for form: UInt8 in [2, 255] {
      var badForm = FrameBytes(.sparsePull)
      badForm.u32(1)
      badForm.u64(1)
      badForm.u8(form)
      #expect(
        throws: DecodeError.outOfRange(
          field: "keys form", value: "\(form)", allowed: "0 (keys) or 1 (cached)")
      ) { try WireCodec.decode(badForm.bytes) }
    }
    #expect(
      throws: DecodeError.outOfRange(
        field: "sequence", value: "0", allowed: "sequence numbers start at 1")
    ) {
      var zero = pull([1])
      zero.replaceSubrange(8..<16, with: [UInt8](repeating: 0, count: 8))
      return try WireCodec.decode(zero)
    }
  }

  /// Rows by hand: width, then values.
  private func rows(width: UInt32, _ values: [Double], count: UInt32? = nil) -> [UInt8] {
    var frame = FrameBytes(.sparseRows)
    frame.u64(1)
    frame.u64(1)
    frame.u32(width)
    frame.values(values, count: count)
    return frame.bytes
  }

  @Test func rowsRefusalsNameTheirField() {
    let widths = "1...\(SparseLimits.maximumWidth)"
    #expect(throws: DecodeError.outOfRange(field: "width", value: "0", allowed: widths)) {
      try WireCodec.decode(rows(width: 0, [1]))
    }
    let wide = UInt32(SparseLimits.maximumWidth + 1)
    #expect(throws: DecodeError.outOfRange(field: "width", value: "\(wide)", allowed: widths)) {
      try WireCodec.decode(rows(width: wide, [1]))
    }
    #expect(
      throws: DecodeError.invalid(field: "values count", reason: "3 values is not whole rows of 2")
    ) { try WireCodec.decode(rows(width: 2, [1, 2, 3])) }
    #expect(
      throws: DecodeError.invalid(field: "values count", reason: "0 values is not whole rows of 2")
    ) { try WireCodec.decode(rows(width: 2, [])) }
    for bad in [Double.nan, .infinity, -.infinity] {
      #expect(throws: DecodeError.nonFinite(field: "values[1]")) {
        try WireCodec.decode(rows(width: 1, [1, bad]))
      }
    }
    // A hostile count fails on the frame's size, not after allocating 32 GiB.
    #expect(throws: DecodeError.truncated(field: "values", needed: 8 * 0xFFFF_FFFF, remaining: 8)) {
      try WireCodec.decode(rows(width: 1, [1], count: .max))
    }
  }

  /// A push by hand: its keys, then its gradients.
  private func push(_ keys: (inout FrameBytes) -> Void, gradients: [Double]) -> [UInt8] {
    var frame = FrameBytes(.sparsePush)
    frame.u32(1)
    frame.u64(1)
    frame.u64(0)
    frame.u32(1)
    frame.u64(0)
    keys(&frame)
    frame.values(gradients)
    return frame.bytes
  }

  @Test func pushRefusalsNameTheirField() {
    let perKey = "1...\(SparseLimits.maximumWidth) per key"
    #expect(
      throws: DecodeError.invalid(
        field: "gradients count", reason: "3 values for 2 keys is not \(perKey)")
    ) { try WireCodec.decode(push({ $0.keys([1, 2]) }, gradients: [1, 2, 3])) }
    #expect(
      throws: DecodeError.invalid(
        field: "gradients count", reason: "0 values for 2 keys is not \(perKey)")
    ) { try WireCodec.decode(push({ $0.keys([1, 2]) }, gradients: [])) }
    let tooWide = [Double](repeating: 1, count: SparseLimits.maximumWidth + 1)
    #expect(
      throws: DecodeError.invalid(
        field: "gradients count",
        reason: "\(tooWide.count) values for 1 keys is not \(perKey)")
    ) { try WireCodec.decode(push({ $0.keys([1]) }, gradients: tooWide)) }
    // A cached list's count is what the gradients are checked against.
    let cached = push(
      {
        $0.u8(1)
        $0.u32(4)
        $0.u32(3)
      }, gradients: [1, 2])
    #expect(
      throws: DecodeError.invalid(
        field: "gradients count", reason: "2 values for 3 keys is not \(perKey)")
    ) { try WireCodec.decode(cached) }
    #expect(throws: DecodeError.nonFinite(field: "gradients[0]")) {
      try WireCodec.decode(push({ $0.keys([1]) }, gradients: [.nan]))
    }
    #expect(throws: DecodeError.invalid(field: "keys[1]", reason: "duplicate key 1")) {
      try WireCodec.decode(push({ $0.keys([1, 1]) }, gradients: [1, 2]))
    }
  }

  /// An audit record by hand.
  private func audit(
    name: String = "sparse-logreg.h20", _ keys: (inout FrameBytes) -> Void, values: [Double],
    gradients: [Double]
  ) -> [UInt8] {
    var frame = FrameBytes(.sparseAuditRecord)
    frame.u32(1)
    frame.u64(2)
    frame.u64(1)
    frame.u64(2)
    frame.str8(name)
    frame.u64(10)
    frame.u64(99)
    frame.u32(1)
    frame.u64(0)
    frame.u32(0)
    frame.u32(1)
    keys(&frame)
    frame.values(values)
    frame.values(gradients)
    return frame.bytes
  }

  @Test func auditRecordRefusalsNameTheirField() throws {
    let fine = audit({ $0.keys([1, 2]) }, values: [1, 2], gradients: [3, 4])
    guard case .sparseAuditRecord(let record) = try WireCodec.decode(fine) else {
      Issue.record("not a sparse audit record")
      return
    }
    #expect(record.keys == [1, 2] && record.serverShard == .whole)
    let uncached = DecodeError.invalid(
      field: "keys", reason: "an audit record lists its keys, uncached")
    #expect(throws: uncached) {
      try WireCodec.decode(
        audit(
          {
            $0.u8(1)
            $0.u32(4)
            $0.u32(2)
          }, values: [1, 2], gradients: [3, 4]))
    }
    #expect(throws: uncached) {
      try WireCodec.decode(
        audit({ $0.keys([1, 2], cacheAs: 3) }, values: [1, 2], gradients: [3, 4]))
    }
    #expect(
      throws: DecodeError.invalid(
        field: "gradients count", reason: "3 gradients for 2 rows of 1")
    ) { try WireCodec.decode(audit({ $0.keys([1, 2]) }, values: [1, 2], gradients: [3, 4, 5])) }
    #expect(
      throws: DecodeError.invalid(
        field: "values count",
        reason: "3 values for 2 keys is not 1...\(SparseLimits.maximumWidth) per key")
    ) {
      try WireCodec.decode(audit({ $0.keys([1, 2]) }, values: [1, 2, 3], gradients: [3, 4, 5]))
    }
    #expect(throws: DecodeError.nonFinite(field: "gradients[1]")) {
      try WireCodec.decode(audit({ $0.keys([1, 2]) }, values: [1, 2], gradients: [3, .infinity]))
    }
    for name in ["chain", "fm-08.h20", "sparse-logreg.h41", "fm-0.h3", "sparse-logreg.h"] {
      #expect(
        throws: DecodeError.invalid(
          field: "model name",
          reason: "\"\(name)\" is not a sparse model (sparse-logreg.hB or fm-K.hB)"), "\(name)"
      ) { try WireCodec.decode(audit(name: name, { $0.keys([1]) }, values: [1], gradients: [3])) }
    }
  }

  @Test func theKeyListIsSortedKeysInLittleEndian() {
    let bytes = WireCodec.encode(
      .sparsePull(SparsePull(workerID: 2, sequence: 1, keys: .keys([1, 0x0102], cacheAs: 5))))
    #expect(bytes == pull([1, 0x0102], cacheAs: 5).enumerated().map { $0 == 4 ? 2 : $1 })
    let cached = WireCodec.encode(
      .sparsePull(SparsePull(workerID: 2, sequence: 1, keys: .cached(id: 5, count: 2))))
    #expect(Array(cached[16...]) == [1, 5, 0, 0, 0, 2, 0, 0, 0])
    #expect(KeyList.cached(id: 5, count: 2).count == 2)
  }

  @Test func theNewErrorCodesAreNamed() throws {
    #expect(ErrorCode.unknownKeyList.rawValue == 15 && ErrorCode.keyOutOfRange.rawValue == 16)
    #expect("\(ErrorCode.unknownKeyList)" == "unknown-key-list")
    #expect("\(ErrorCode.keyOutOfRange)" == "key-out-of-range")
    let reply = ErrorReply(
      code: .unknownKeyList, message: "key list 9 of worker 3: resend the keys")
    #expect(try WireCodec.decode(WireCodec.encode(.error(reply))) == .error(reply))
  }
}

extension Array where Element: Hashable {
  /// The elements, each once, in first-seen order.
  fileprivate func uniqued() -> [Element] {
    var seen = Set<Element>()
    return filter { seen.insert($0).inserted }
  }
}
