import Testing
import TrainingMath

@testable import WireProtocol

/// One of every message, with awkward values where they fit.
let everyMessage: [WireMessage] = {
  let layout = [TensorSpec(name: "w", count: 3)]
  let tensors = NamedTensors(layout: layout, values: [0.2333, -0.233, -0.0])
  let two = NamedTensors(
    layout: [TensorSpec(name: "a.b_c-1", count: 1), TensorSpec(name: "B", count: 2)],
    values: [Double.leastNonzeroMagnitude, .greatestFiniteMagnitude, -1e-300])
  let rows = [0, 1 << 40]
  return [
    .join(
      Join(
        workerID: 7, shard: try! Shard(index: 1, count: 3),
        model: ModelDescriptor(name: "chain", layout: layout),
        dataset: DatasetIdentity(rows: 2, fingerprint: 0xDEAD_BEEF))),
    .push(
      GradientPush(
        workerID: 1, sequence: 1, computedAtVersion: 0, rows: rows, gradient: tensors)),
    .push(
      GradientPush(
        workerID: .max, sequence: .max, computedAtVersion: .max, rows: [rows[0]],
        gradient: two)),
    .weights(WeightsReply(version: 42, parameters: tensors)),
    .statusRequest,
    .status(
      ServerStatus(
        mode: .sync, version: 9, gradientsApplied: 18, rejected: 2, learningRate: 0.05,
        requiredWorkers: 2, modelName: "chain", parameters: tensors,
        workers: [
          WorkerStatus(
            workerID: 0, shard: try! Shard(index: 0, count: 2), pushesApplied: 9, lastSequence: 9)
        ],
        workersLeft: 1, auditRecordsSent: 4, epochs: 10, epoch: 2, rowsAppliedInEpoch: 5,
        datasetRows: 9, workersDead: 1, auditsReported: 4, auditsFailed: 1,
        lastAudit: AuditResult(workerID: 0, sequence: 2, passed: true, maximumRelativeError: 1e-12))
    ),
    .status(
      ServerStatus(
        mode: .async, version: 1200, gradientsApplied: 1200, rejected: 1, learningRate: 0.05,
        requiredWorkers: 1, modelName: "chain", parameters: tensors, workers: [], workersLeft: 0,
        auditRecordsSent: 0,
        resume: ResumeStatus(
          checkpointFile: "checkpoint-00000000000000001000.pstckpt", version: 1000,
          gradientsApplied: 1000, jobComplete: true, rowsToLease: 0,
          workers: [.init(workerID: 0, lastSequence: 1000), .init(workerID: 7, lastSequence: 3)]))
    ),
    .auditSubscribe(AuditSubscription(every: 10, leaseMilliseconds: 6000)),
    .subscription(SubscriptionState(every: 0, recordsSent: 5, recordsDropped: 1)),
    .auditRecord(
      AuditRecord(
        workerID: 1, sequence: 3, computedAtVersion: 2, appliedAtVersion: 4, modelName: "chain",
        weights: tensors, dataset: DatasetIdentity(rows: 1 << 41, fingerprint: 9), rows: rows,
        gradient: tensors)),
    .leave(workerID: 3),
    .left(workerID: 3),
    .error(ErrorReply(code: .replayed, message: "push 3 was already applied — ünïcode ok")),
    .weights(WeightsReply(version: 7, acknowledgedSequence: 6, parameters: tensors)),
    .weights(
      WeightsReply(
        version: 7, acknowledgedSequence: 300, appliedBelow: AppliedBitmap(words: [5, 0, 1 << 63]),
        parameters: tensors)),
    .heartbeat(workerID: 2),
    .leaseRequest(workerID: 2),
    .lease(
      Lease(
        epoch: 3, firstRow: 64, rowCount: 64,
        weights: WeightsReply(version: 9, acknowledgedSequence: 4, parameters: tensors))),
    .noLease(NoLease(finished: false, retryAfterMilliseconds: 50)),
    .noLease(NoLease(finished: true, retryAfterMilliseconds: 0)),
    .auditResult(AuditResult(workerID: 3, sequence: 9, passed: false, maximumRelativeError: 2)),
    .auditResult(
      AuditResult(
        workerID: 4, sequence: 10, passed: true, maximumRelativeError: 0.351, conclusive: false,
        gradientMagnitude: 3.5e-16)),
    .pushes([
      GradientPush(
        workerID: 4, sequence: 7, computedAtVersion: 2, rows: rows, gradient: tensors),
      GradientPush(
        workerID: 4, sequence: 8, computedAtVersion: 2, rows: [rows[1]], gradient: tensors),
      GradientPush(
        workerID: 4, sequence: 9, computedAtVersion: 3, rows: [rows[0]], gradient: two),
    ]),
    .weights(
      WeightsReply(
        version: 1,
        parameters: NamedTensors(
          layout: [
            TensorSpec(name: "half", count: 2, elementType: .float32),
            TensorSpec(name: "full", count: 1),
          ], values: [0.5, -Double(Float.greatestFiniteMagnitude), 0.1]))),
    .evaluation(EvaluationReport(version: 40, rows: 360, loss: 0.31, accuracy: 0.9125)),
    .evaluation(EvaluationReport(version: .max, rows: 1, loss: 0, accuracy: nil)),
    .evaluation(
      EvaluationReport(version: 0, rows: .max, loss: .greatestFiniteMagnitude, accuracy: 1)),
    .status(
      ServerStatus(
        mode: .async, version: 50, gradientsApplied: 50, rejected: 0, learningRate: 0.05,
        requiredWorkers: 1, modelName: "chain", parameters: tensors, workers: [],
        workersLeft: 0, auditRecordsSent: 0,
        lastEvaluation: EvaluationReport(version: 40, rows: 360, loss: 0.31, accuracy: 0))),
  ]
    + [
      CheckpointHealth(
        durableVersion: 200, durableAgeMilliseconds: 120_500, failures: 30,
        consecutiveFailures: 27, failingForMilliseconds: 120_000,
        lastError: "cannot write /ckpt/.tmp-1-checkpoint: No space left on device — ü",
        lastErrorAgeMilliseconds: 1500),
      CheckpointHealth(durableVersion: nil, failures: 1, consecutiveFailures: 1, lastError: "full"),
    ].map { health in
      .status(
        ServerStatus(
          mode: .async, version: 900, gradientsApplied: 900, rejected: 0, learningRate: 0.05,
          requiredWorkers: 1, modelName: "chain", parameters: tensors, workers: [],
          workersLeft: 0, auditRecordsSent: 0, checkpoints: health))
    } + everySparseMessage
    + [
      .evaluation(EvaluationReport(version: 8, rows: 100, loss: 0.4, accuracy: 0.97, auc: 0.75)),
      .evaluation(EvaluationReport(version: 8, rows: 100, loss: 0.4, accuracy: nil, auc: 1)),
      .status(
        ServerStatus(
          mode: .async, version: 900, gradientsApplied: 900, rejected: 0, learningRate: 0.05,
          requiredWorkers: 1, modelName: "chain", parameters: tensors, workers: [],
          workersLeft: 0, auditRecordsSent: 0,
          lastEvaluation: EvaluationReport(
            version: 800, rows: 10, loss: 0.5, accuracy: 0.9, auc: 0.8125),
          keyedTable: KeyedTableStatus(
            modelName: "fm-8.h24", width: 9, rowsTouched: 1000, rowBytes: 1000 * (8 + 72 + 72),
            bytesAllocated: 250_000, pulls: 40, pushes: 39, keysPulled: 4000, keysPushed: 3900,
            keyCacheHits: 38, keyCacheMisses: 1))),
    ]
}()

@Suite struct WireCodecTests {
  @Test func everyMessageRoundTripsExactly() throws {
    for message in everyMessage {
      let bytes = WireCodec.encode(message)
      #expect(bytes.count == WireCodec.encodedSize(of: message))
      #expect(try WireCodec.decode(bytes) == message, "\(message.type)")
    }
  }

  @Test func negativeZeroAndExtremesKeepTheirBits() throws {
    guard case .push(let push) = try WireCodec.decode(WireCodec.encode(everyMessage[2])) else {
      Issue.record("not a push")
      return
    }
    #expect(
      push.gradient.values.map(\.bitPattern)
        == [Double.leastNonzeroMagnitude, .greatestFiniteMagnitude, -1e-300].map(\.bitPattern))
  }

  @Test func headerIsMagicVersionType() {
    let bytes = WireCodec.encode(.statusRequest)
    #expect(bytes == [0x50, 0x53, 7, MessageType.statusRequest.rawValue])
  }

  @Test func everyTruncationIsRejected() {
    for message in everyMessage {
      let bytes = WireCodec.encode(message)
      for length in 0..<bytes.count {
        #expect(throws: DecodeError.self, "\(message.type) cut to \(length)") {
          try WireCodec.decode(Array(bytes.prefix(length)))
        }
      }
    }
  }

  /// Decoding into the previous message gives what a fresh decode gives, for
  /// every pair of messages in turn, after errors too, and never writes into
  /// storage that a copy still holds.
  @Test func decodingIntoThePreviousMessageEqualsAFreshDecode() throws {
    func decode(_ bytes: [UInt8], reusing message: inout WireMessage) throws {
      try bytes.withUnsafeBytes { buffer in try WireCodec.decode(buffer, reusing: &message) }
    }
    var reused = WireMessage.push(.empty)
    for first in everyMessage {
      for second in everyMessage {
        try decode(WireCodec.encode(first), reusing: &reused)
        #expect(reused == first)
        let kept = reused  // shares the arrays with `reused`
        try decode(WireCodec.encode(second), reusing: &reused)
        #expect(reused == second, "\(first.type) then \(second.type)")
        #expect(kept == first, "a kept copy of \(first.type) was overwritten")
        // A truncated frame throws and leaves a valid message that decodes on.
        let cut = Array(WireCodec.encode(first).dropLast())
        #expect(throws: DecodeError.self) { try decode(cut, reusing: &reused) }
        try decode(WireCodec.encode(first), reusing: &reused)
        #expect(reused == first)
      }
    }
  }

  /// The applied-below bitmap travels as its significant words only: a trailing
  /// zero word or more than 4 words is refused.
  @Test func theAppliedBitmapHasOneEncoding() throws {
    let tensors = NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [1])
    let reply = WeightsReply(
      version: 1, acknowledgedSequence: 9, appliedBelow: AppliedBitmap(words: [3]),
      parameters: tensors)
    let bytes = WireCodec.encode(.weights(reply))
    // header 4, version 8, acknowledged 8, then the word count.
    #expect(bytes[20] == 1)
    #expect(try WireCodec.decode(bytes) == .weights(reply))
    var zeroTail = bytes
    zeroTail[20] = 2
    zeroTail.insert(contentsOf: [UInt8](repeating: 0, count: 8), at: 29)
    #expect(throws: DecodeError.self) { try WireCodec.decode(zeroTail) }
    var tooMany = bytes
    tooMany[20] = 5
    #expect(throws: DecodeError.self) { try WireCodec.decode(tooMany) }
  }

  /// A frame of pushes holds 2 to 256 pushes of one worker with consecutive sequences.
  @Test func aFrameOfPushesIsOneWorkersConsecutivePushes() throws {
    func push(_ worker: UInt32, _ sequence: UInt64) -> GradientPush {
      GradientPush(
        workerID: worker, sequence: sequence, computedAtVersion: 0,
        rows: [0],
        gradient: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [0.5]))
    }
    let good = [push(1, 5), push(1, 6)]
    #expect(try WireCodec.decode(WireCodec.encode(.pushes(good))) == .pushes(good))
    let refused: [([GradientPush], String)] = [
      ([push(1, 5)], "push count"), ([push(1, 5), push(2, 6)], "pushes[1] worker id"),
      ([push(1, 5), push(1, 7)], "pushes[1] sequence"),
      ([push(1, 6), push(1, 5)], "pushes[1] sequence"),
      (Array(repeating: push(1, 1), count: 257), "push count"),
    ]
    for (pushes, field) in refused {
      #expect(throws: DecodeError.self) { try WireCodec.decode(WireCodec.encode(.pushes(pushes))) }
      do {
        _ = try WireCodec.decode(WireCodec.encode(.pushes(pushes)))
      } catch {
        #expect(error.description.contains(field), "\(error)")
      }
    }
  }

  @Test func trailingBytesAreRejected() {
    #expect(throws: DecodeError.trailingBytes(1)) {
      try WireCodec.decode(WireCodec.encode(.leave(workerID: 1)) + [0])
    }
  }

  /// The status's checkpoint report: flags are 0 or 1, and a server cannot
  /// have failed more times in a row than in all.
  @Test func aBadCheckpointReportIsRefused() throws {
    let health = CheckpointHealth(
      durableVersion: 7, durableAgeMilliseconds: 5, failures: 2, consecutiveFailures: 1,
      lastError: "full")
    let status = ServerStatus(
      mode: .async, version: 9, gradientsApplied: 9, rejected: 0, learningRate: 0.1,
      requiredWorkers: 1, modelName: "m",
      parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [1]),
      workers: [], workersLeft: 0, auditRecordsSent: 0, checkpoints: health)
    let bytes = WireCodec.encode(.status(status))
    // The report is the 1 + 1 + 16 + 24 + 2 + 4 + 8 bytes before the resume
    // report's and the evaluation's one byte each (0: none), the quarantine
    // report's 21 (off, none listed, no rollbacks) and the keyed table's flag (0: none).
    #expect(Array(bytes.suffix(24).prefix(2)) == [0, 0])
    #expect(bytes.last == 0)
    let start = bytes.count - 24 - 56
    #expect(Array(bytes[start..<(start + 2)]) == [1, 1])
    for (offset, value, field) in [
      (0, 2, "checkpoint report present"), (1, 9, "durable checkpoint present"),
    ] as [(Int, UInt8, String)] {
      var bad = bytes
      bad[start + offset] = value
      #expect(throws: DecodeError.outOfRange(field: field, value: String(value), allowed: "0 or 1"))
      {
        try WireCodec.decode(bad)
      }
    }
    var bad = bytes
    bad[start + 26] = 3  // consecutive failures 3 of 2
    #expect(
      throws: DecodeError.outOfRange(
        field: "consecutive checkpoint failures", value: "3", allowed: "at most the 2 failures")
    ) { try WireCodec.decode(bad) }
  }

  @Test func wrongMagicVersionAndTypeAreNamed() {
    var bytes = WireCodec.encode(.statusRequest)
    bytes[0] = 0x51
    #expect(throws: DecodeError.badMagic) { try WireCodec.decode(bytes) }
    bytes = WireCodec.encode(.statusRequest)
    // Version 1 (before weights carried the applied-below bitmap), version 2
    // (before values frames) and version 3 (before audit results said whether
    // they were above rounding noise, and status carried the checkpoint report
    // and what a resume restored) and version 4 (before tensors had shapes and
    // pushes named rows instead of carrying samples) and version 5 (before
    // replays, sampled audits and quarantine) and version 6 (before sparse
    // models) are refused too.
    for version: UInt8 in [1, 2, 3, 4, 5, 6, 8] {
      bytes[2] = version
      #expect(throws: DecodeError.unsupportedVersion(version)) { try WireCodec.decode(bytes) }
    }
    bytes = WireCodec.encode(.statusRequest)
    bytes[3] = 99
    #expect(throws: DecodeError.unknownType(99)) { try WireCodec.decode(bytes) }
    #expect(DecodeError.unknownType(99).code == .unknownType)
  }

  /// Replaces the 8 bytes of the first occurrence of `value` with `replacement`.
  func patch(_ bytes: [UInt8], _ value: Double, with replacement: Double) -> [UInt8] {
    let needle = withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
    let patchBytes = withUnsafeBytes(of: replacement.bitPattern.littleEndian) { Array($0) }
    var out = bytes
    for start in 0...(bytes.count - 8) where Array(bytes[start..<(start + 8)]) == needle {
      out.replaceSubrange(start..<(start + 8), with: patchBytes)
      return out
    }
    Issue.record("value not found")
    return out
  }

  @Test(arguments: [Double.nan, .infinity, -.infinity, Double(bitPattern: 0x7FF0_0000_0000_0001)])
  func nonFiniteNumbersAreRejectedEverywhere(bad: Double) {
    let push = WireCodec.encode(everyMessage[1])
    #expect(throws: DecodeError.nonFinite(field: "gradient w[1]")) {
      try WireCodec.decode(patch(push, -0.233, with: bad))
    }
    let status = WireCodec.encode(everyMessage[5])
    #expect(throws: DecodeError.nonFinite(field: "learning rate")) {
      try WireCodec.decode(patch(status, 0.05, with: bad))
    }
  }

  @Test func float32TensorsTravelAsFourBytesAndRefuseNonFinite() throws {
    let layout = [TensorSpec(name: "w", count: 2, elementType: .float32)]
    let message = WireMessage.weights(
      WeightsReply(version: 3, parameters: NamedTensors(layout: layout, values: [0.25, -3])))
    let bytes = WireCodec.encode(message)
    let float64 = WireCodec.encode(
      .weights(
        WeightsReply(
          version: 3,
          parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 2)], values: [0.25, -3]))))
    #expect(float64.count - bytes.count == 8)  // 2 elements × 4 bytes saved
    #expect(try WireCodec.decode(bytes) == message)
    var corrupt = bytes
    let infinity = withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian) { Array($0) }
    corrupt.replaceSubrange((corrupt.count - 4)..<corrupt.count, with: infinity)
    #expect(throws: DecodeError.nonFinite(field: "weights w[1]")) { try WireCodec.decode(corrupt) }
  }

  /// The finiteness check runs over whole vectors: a bad value is caught at the
  /// first, a middle and the last position of long and odd-sized tensors, in
  /// both element types, and the extreme finite values all pass.
  @Test(arguments: [ElementType.float64, .float32])
  func finitenessCheckCoversEveryPositionAndPattern(type: ElementType) throws {
    let bad: [Double] =
      type == .float64
      ? [
        .nan, -.nan, .infinity, -.infinity, .signalingNaN,
        Double(bitPattern: 0x7FF0_0000_0000_0001), Double(bitPattern: 0xFFFF_FFFF_FFFF_FFFF),
      ]
      : [.nan, .infinity, -.infinity]  // what survives the rounding to binary32
    let extremes: [Double] =
      type == .float64
      ? [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, 0]
      : [
        Double(Float.greatestFiniteMagnitude), -Double(Float.greatestFiniteMagnitude),
        Double(Float.leastNonzeroMagnitude), -0.0,
      ]
    for count in [1, 2, 3, 5, 8, 17, 1000] {
      let layout = [TensorSpec(name: "w", count: count, elementType: type)]
      let values = (0..<count).map { extremes[$0 % extremes.count] }
      let message = WireMessage.weights(
        WeightsReply(version: 1, parameters: NamedTensors(layout: layout, values: values)))
      let bytes = WireCodec.encode(message)
      #expect(try WireCodec.decode(bytes) == message)
      let width = type == .float64 ? 8 : 4
      let start = bytes.count - count * width  // the values end the frame
      for position in Set([0, count / 2, count - 1]) {
        for value in bad {
          var corrupt = bytes
          let replacement =
            type == .float64
            ? withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
            : withUnsafeBytes(of: Float(value).bitPattern.littleEndian) { Array($0) }
          let at = start + position * width
          corrupt.replaceSubrange(at..<(at + width), with: replacement)
          #expect(throws: DecodeError.nonFinite(field: "weights w[\(position)]")) {
            try WireCodec.decode(corrupt)
          }
        }
      }
    }
  }

  /// With every float64 tensor's values in a frame of their own (the form large
  /// tensors travel in), every message decodes to itself, and
  /// its frames concatenate to its one-frame encoding.
  @Test func everyMessageDecodesFromValuesFrames() throws {
    let mixed = NamedTensors(
      layout: [
        TensorSpec(name: "a", count: 2), TensorSpec(name: "h", count: 3, elementType: .float32),
        TensorSpec(name: "b", count: 1),
      ], values: [1, 2, 0.5, 0.25, -4, 3])
    let extra: [WireMessage] = [
      .weights(WeightsReply(version: 1, parameters: mixed)),
      .auditRecord(
        AuditRecord(
          workerID: 1, sequence: 2, computedAtVersion: 1, appliedAtVersion: 2, modelName: "m",
          weights: mixed, dataset: DatasetIdentity(rows: 1 << 41, fingerprint: 9), rows: [0],
          gradient: mixed)),
    ]
    let float32Values = [Float(0.5), 0.25, -4].flatMap {
      withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) }
    }
    var splitAny = false
    for message in everyMessage + extra {
      let frames = WireCodec.encodeFrames(message, threshold: 8)
      splitAny = splitAny || frames.count > 1
      #expect(Array(frames.joined()) == WireCodec.encode(message))
      #expect(try WireCodec.decode(frames: frames) == message, "\(message.type)")
      // Float32 values are converted, so they never get a frame of their own.
      #expect(!frames.contains(float32Values))
    }
    #expect(splitAny)
    // The weights of `mixed`: header, a's values, h and the header of b, b's values.
    let weights = WireCodec.encodeFrames(extra[0], threshold: 8)
    #expect(weights.count == 4 && weights[1].count == 16 && weights[3].count == 8)
    // At or above the default threshold only: a 3-element tensor is one frame.
    #expect(WireCodec.encodeFrames(everyMessage[2]).count == 1)
  }

  /// A push whose gradient tensors are all Float64 in aligned frames of their
  /// own is decoded without copying them; any other push is copied as before.
  @Test func pushValuesAreReadInPlaceOnlyFromAlignedValuesFrames() throws {
    func push(_ layout: [TensorSpec]) -> GradientPush {
      GradientPush(
        workerID: 1, sequence: 2, computedAtVersion: 0, rows: [0],
        gradient: NamedTensors(
          layout: layout, values: (0..<layout.totalCount).map { Double($0) + 0.5 }))
    }
    func decodeInPlace(_ frames: [[UInt8]], shiftingLaterBy shift: Int = 0) throws -> (
      WireMessage, [[Double]]?
    ) {
      // Each later frame copied `shift` bytes into a buffer, to misalign it at will.
      let shifted = frames.dropFirst().map { [UInt8](repeating: 0, count: shift) + $0 }
      return try WireCodec.withFrames([frames[0]] + shifted) {
        (first, later) throws(DecodeError) in
        var message = WireMessage.statusRequest
        var values: BorrowedValues?
        try WireCodec.decode(
          first, later: later.map { UnsafeRawBufferPointer(rebasing: $0[shift...]) },
          reusing: &message, pushValuesInPlace: &values)
        return (
          message,
          values.map { values in
            var parts: [[Double]] = []
            values.forEachPart { _, part in parts.append(Array(part)) }
            return parts
          }
        )
      }
    }
    let two = push([TensorSpec(name: "a", count: 2), TensorSpec(name: "b", count: 3)])
    let (header, parts) = try decodeInPlace(WireCodec.encodeFrames(.push(two), threshold: 8))
    #expect(parts == [[0.5, 1.5], [2.5, 3.5, 4.5]])
    guard case .push(let decoded) = header else { throw DecodeError.badMagic }
    #expect(decoded.gradient.layout == two.gradient.layout && decoded.gradient.values.isEmpty)
    #expect(decoded.rows == two.rows && decoded.sequence == 2)
    // Misaligned, partly inline, Float32, or one frame: copied, as a plain decode does.
    let mixed = push([
      TensorSpec(name: "a", count: 2), TensorSpec(name: "h", count: 3, elementType: .float32),
    ])
    let copiedCases: [([[UInt8]], Int)] = [
      (WireCodec.encodeFrames(.push(two), threshold: 8), 1),
      (WireCodec.encodeFrames(.push(two), threshold: 24), 0),
      (WireCodec.encodeFrames(.push(mixed), threshold: 8), 0),
      ([WireCodec.encode(.push(two))], 0),
    ]
    for (frames, shift) in copiedCases {
      let (message, parts) = try decodeInPlace(frames, shiftingLaterBy: shift)
      #expect(parts == nil)
      #expect(message == (try WireCodec.decode(frames: frames)))
    }
    // A NaN read in place is refused as it is when copied, naming its place.
    var frames = WireCodec.encodeFrames(.push(two), threshold: 8)
    let last = frames.count - 1
    frames[last].replaceSubrange(
      8..<16, with: withUnsafeBytes(of: Double.nan.bitPattern) { Array($0) })
    #expect(throws: DecodeError.nonFinite(field: "gradient b[1]")) { try decodeInPlace(frames) }
  }

  /// Which error a message gets does not depend on the storage it is decoded
  /// into: a NaN in a first tensor and a duplicate name in the next give the
  /// same error fresh and into a previous message with room to spare.
  @Test func errorsDoNotDependOnTheStorageDecodedInto() throws {
    let good = WireMessage.weights(
      WeightsReply(
        version: 1,
        parameters: NamedTensors(
          layout: [TensorSpec(name: "a", count: 2), TensorSpec(name: "b", count: 2)],
          values: [1, 2, 3, 4])))
    var bytes = patch(WireCodec.encode(good), 1, with: .nan)
    // Rename "b" to "a": the layout is now wrong as well.
    let bName = try #require(bytes.lastIndex(of: UInt8(ascii: "b")))
    bytes[bName] = UInt8(ascii: "a")
    let fresh = Result { () throws(DecodeError) in try WireCodec.decode(bytes) }
    var previous = WireMessage.weights(
      WeightsReply(
        version: 0,
        parameters: NamedTensors(
          layout: [TensorSpec(name: "x", count: 64)], values: [Double](repeating: 0, count: 64))))
    let reused = bytes.withUnsafeBytes { buffer in
      Result { () throws(DecodeError) in try WireCodec.decode(buffer, reusing: &previous) }
    }
    #expect(throws: DecodeError.invalid(field: "tensor name", reason: "\"a\" appears twice")) {
      try fresh.get()
    }
    #expect(throws: DecodeError.invalid(field: "tensor name", reason: "\"a\" appears twice")) {
      try reused.get()
    }
  }

  @Test func hostileCountsFailWithoutAllocating() {
    // A push claiming 2^32-1 samples in a 40-byte frame.
    var writer: [UInt8] = [0x50, 0x53, WireCodec.protocolVersion, MessageType.push.rawValue]
    writer += [1, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0]
    writer += [0xFF, 0xFF, 0xFF, 0xFF]
    #expect(throws: DecodeError.self) { try WireCodec.decode(writer) }
    // A tensor claiming 2^64-1 elements.
    let weights = WireCodec.encode(
      .weights(
        WeightsReply(
          version: 1,
          parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [1])))
    )
    var huge = weights
    // size field follows: header 4 + version 8 + ack 8 + count 2 + name len 1 + "w" 1 + tag 1
    for offset in 25..<33 { huge[offset] = 0xFF }
    #expect(throws: DecodeError.self) { try WireCodec.decode(huge) }
  }

  @Test func badNamesDuplicatesZeroSequenceAndBadShardsAreRejected() throws {
    func push(_ gradient: NamedTensors, sequence: UInt64 = 1) -> [UInt8] {
      WireCodec.encode(
        .push(
          GradientPush(
            workerID: 1, sequence: sequence, computedAtVersion: 0,
            rows: [0], gradient: gradient)))
    }
    let bad = NamedTensors(layout: [TensorSpec(name: "w x", count: 1)], values: [1])
    #expect(throws: DecodeError.self) { try WireCodec.decode(push(bad)) }
    let duplicate = NamedTensors(
      layout: [TensorSpec(name: "w", count: 1), TensorSpec(name: "w", count: 1)], values: [1, 2])
    #expect(throws: DecodeError.invalid(field: "tensor name", reason: "\"w\" appears twice")) {
      try WireCodec.decode(push(duplicate))
    }
    let fine = NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [1])
    #expect(throws: DecodeError.self) { try WireCodec.decode(push(fine, sequence: 0)) }
    var join = WireCodec.encode(everyMessage[0])
    join[8] = 9  // shard index 9 of 3
    #expect(throws: DecodeError.self) { try WireCodec.decode(join) }
  }

  /// Random byte flips, insertions and cuts of valid frames: decoding either
  /// fails with a DecodeError or yields a message that re-encodes to the same bytes.
  @Test func mutatedFramesNeverCrashAndNeverDecodeAmbiguously() {
    var generator = SplitMix64(seed: 2026)
    var decoded = 0
    for round in 0..<20_000 {
      var bytes = WireCodec.encode(everyMessage[round % everyMessage.count])
      let edits = 1 + Int(generator.next() % 3)
      for _ in 0..<edits {
        let position = Int(generator.next() % UInt64(bytes.count))
        switch generator.next() % 4 {
        case 0: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
        case 1: bytes[position] ^= 1 << (generator.next() % 8)
        case 2: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
        default: bytes.removeSubrange(position...)
        }
        if bytes.isEmpty { bytes = [0] }
      }
      if let message = try? WireCodec.decode(bytes) {
        decoded += 1
        #expect(WireCodec.encode(message) == bytes)
      }
    }
    #expect(decoded > 0)  // some mutations (e.g. of a weight value) are still valid frames
  }

  @Test func errorMessagesAreCutTo1024Bytes() throws {
    let reply = ErrorReply(code: .malformed, message: String(repeating: "é", count: 1000))
    #expect(reply.message.utf8.count <= 1024)
    #expect(try WireCodec.decode(WireCodec.encode(.error(reply))) == .error(reply))
  }
}
