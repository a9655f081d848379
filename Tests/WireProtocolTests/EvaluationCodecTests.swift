import Testing
import TrainingMath

@testable import WireProtocol

/// `evaluation` (coordinator → server) and the evaluation at the end of `status`:
/// strict decoding, every bad field named.
extension WireCodecTests {
  static let classifierEvaluation = EvaluationReport(
    version: 40, rows: 360, loss: 0.31, accuracy: 0.9125)

  @Test func anEvaluationRoundTripsWithAndWithoutAccuracy() throws {
    for report in [
      Self.classifierEvaluation, EvaluationReport(version: 3, rows: 2, loss: 0.0125, accuracy: nil),
    ] {
      let bytes = WireCodec.encode(.evaluation(report))
      #expect(try WireCodec.decode(bytes) == .evaluation(report))
      // Header, version, rows, loss, the accuracy flag and the accuracy if any,
      // the AUC flag (0: none).
      #expect(bytes.count == 4 + 8 + 8 + 8 + 1 + (report.accuracy == nil ? 0 : 8) + 1)
    }
    #expect(MessageType.evaluation.rawValue == 18)
    #expect("\(MessageType.evaluation)" == "evaluation")
  }

  @Test(arguments: [Double.nan, .infinity, -.infinity])
  func aNonFiniteLossOrAccuracyIsRefusedByName(bad: Double) {
    let bytes = WireCodec.encode(.evaluation(Self.classifierEvaluation))
    #expect(throws: DecodeError.nonFinite(field: "evaluation loss")) {
      try WireCodec.decode(patch(bytes, 0.31, with: bad))
    }
    #expect(throws: DecodeError.nonFinite(field: "evaluation accuracy")) {
      try WireCodec.decode(patch(bytes, 0.9125, with: bad))
    }
  }

  @Test func anAccuracyOutsideZeroToOneIsRefusedByName() {
    let bytes = WireCodec.encode(.evaluation(Self.classifierEvaluation))
    for bad in [2.0, 1.0000000000000002, -0.5, -Double.leastNonzeroMagnitude] {
      #expect(
        throws: DecodeError.outOfRange(
          field: "evaluation accuracy", value: "\(bad)", allowed: "0 to 1")
      ) { try WireCodec.decode(patch(bytes, 0.9125, with: bad)) }
    }
  }

  @Test func aNegativeLossNoRowsAndABadFlagAreRefusedByName() throws {
    let bytes = WireCodec.encode(.evaluation(Self.classifierEvaluation))
    #expect(
      throws: DecodeError.outOfRange(field: "evaluation loss", value: "-0.31", allowed: ">= 0")
    ) { try WireCodec.decode(patch(bytes, 0.31, with: -0.31)) }
    var noRows = bytes
    noRows.replaceSubrange(12..<20, with: [UInt8](repeating: 0, count: 8))
    #expect(throws: DecodeError.outOfRange(field: "evaluation rows", value: "0", allowed: ">= 1")) {
      try WireCodec.decode(noRows)
    }
    var badFlag = bytes
    badFlag[28] = 2
    #expect(
      throws: DecodeError.outOfRange(
        field: "evaluation accuracy present", value: "2", allowed: "0 or 1")
    ) { try WireCodec.decode(badFlag) }
    // Without an accuracy, the AUC's flag follows the accuracy's.
    var noAccuracy = bytes
    noAccuracy[28] = 0
    #expect(
      throws: DecodeError.outOfRange(
        field: "evaluation auc present", value: "\(bytes[29])", allowed: "0 or 1")
    ) { try WireCodec.decode(noAccuracy) }
    var noAccuracyNoAUC = Array(bytes.prefix(28)) + [0, 0]
    #expect(
      try WireCodec.decode(noAccuracyNoAUC)
        == .evaluation(EvaluationReport(version: 40, rows: 360, loss: 0.31, accuracy: nil)))
    noAccuracyNoAUC.append(0)
    #expect(throws: DecodeError.trailingBytes(1)) { try WireCodec.decode(noAccuracyNoAUC) }
  }

  @Test func statusRefusesABadEvaluationByName() throws {
    let status = ServerStatus(
      mode: .async, version: 50, gradientsApplied: 50, rejected: 0, learningRate: 0.05,
      requiredWorkers: 1, modelName: "chain",
      parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [1]),
      workers: [], workersLeft: 0, auditRecordsSent: 0, lastEvaluation: Self.classifierEvaluation)
    let bytes = WireCodec.encode(.status(status))
    #expect(try WireCodec.decode(bytes) == .status(status))
    #expect(throws: DecodeError.nonFinite(field: "evaluation loss")) {
      try WireCodec.decode(patch(bytes, 0.31, with: .nan))
    }
    #expect(
      throws: DecodeError.outOfRange(field: "evaluation accuracy", value: "2.0", allowed: "0 to 1")
    ) { try WireCodec.decode(patch(bytes, 0.9125, with: 2)) }
  }
}

extension WireCodecTests {
  static let aucEvaluation = EvaluationReport(
    version: 40, rows: 360, loss: 0.31, accuracy: 0.9125, auc: 0.8125)

  @Test func anAUCFollowsTheAccuracyAndIsRefusedByName() throws {
    let bytes = WireCodec.encode(.evaluation(Self.aucEvaluation))
    #expect(bytes.count == 4 + 8 + 8 + 8 + 1 + 8 + 1 + 8)
    #expect(try WireCodec.decode(bytes) == .evaluation(Self.aucEvaluation))
    #expect(
      Array(bytes[38..<46]) == withUnsafeBytes(of: 0.8125.bitPattern.littleEndian) { Array($0) })
    #expect(throws: DecodeError.nonFinite(field: "evaluation auc")) {
      try WireCodec.decode(patch(bytes, 0.8125, with: .nan))
    }
    for bad in [1.5, -0.25] {
      #expect(
        throws: DecodeError.outOfRange(field: "evaluation auc", value: "\(bad)", allowed: "0 to 1")
      ) { try WireCodec.decode(patch(bytes, 0.8125, with: bad)) }
    }
    var badFlag = bytes
    badFlag[37] = 2
    #expect(
      throws: DecodeError.outOfRange(field: "evaluation auc present", value: "2", allowed: "0 or 1")
    ) { try WireCodec.decode(badFlag) }
  }

  @Test func aKeyedTableReportRoundTripsAtTheEndOfStatusAndIsRefusedByName() throws {
    let report = KeyedTableStatus(
      modelName: "fm-8.h24", width: 9, rowsTouched: 10, rowBytes: 10 * 152, bytesAllocated: 4096,
      pulls: 1, pushes: 2, keysPulled: 3, keysPushed: 4, keyCacheHits: 5, keyCacheMisses: 6,
      examples: 7, bytesReceived: 8, bytesSent: 6)
    let status = ServerStatus(
      mode: .async, version: 9, gradientsApplied: 9, rejected: 0, learningRate: 0.1,
      requiredWorkers: 1, modelName: "m",
      parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [1]),
      workers: [], workersLeft: 0, auditRecordsSent: 0, keyedTable: report)
    let plain = WireCodec.encode(
      .status(
        ServerStatus(
          mode: .async, version: 9, gradientsApplied: 9, rejected: 0, learningRate: 0.1,
          requiredWorkers: 1, modelName: "m",
          parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [1]),
          workers: [], workersLeft: 0, auditRecordsSent: 0)))
    let bytes = WireCodec.encode(.status(status))
    // The flag, the name, the width and twelve counts.
    #expect(bytes.count == plain.count + 1 + 8 + 4 + 12 * 8)
    #expect(try WireCodec.decode(bytes) == .status(status))
    let start = plain.count  // after the flag
    #expect(bytes[start - 1] == 1 && Array(bytes.suffix(8)) == [6, 0, 0, 0, 0, 0, 0, 0])
    var badWidth = bytes
    badWidth[start + 9] = 0
    #expect(
      throws: DecodeError.outOfRange(
        field: "keyed table width", value: "0", allowed: "1...\(SparseLimits.maximumWidth)")
    ) { try WireCodec.decode(badWidth) }
    var badName = bytes
    badName[start + 1] = UInt8(ascii: "g")
    #expect(
      throws: DecodeError.invalid(
        field: "keyed table model name",
        reason: "\"gm-8.h24\" is not a sparse model (sparse-logreg.hB or fm-K.hB)")
    ) { try WireCodec.decode(badName) }
    var badFlag = bytes
    badFlag[start - 1] = 2
    #expect(
      throws: DecodeError.outOfRange(field: "keyed table present", value: "2", allowed: "0 or 1")
    ) { try WireCodec.decode(badFlag) }
    #expect(throws: DecodeError.self) { try WireCodec.decode(Array(bytes.dropLast())) }
  }
}
