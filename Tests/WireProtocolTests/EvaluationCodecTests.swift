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
      // Header, version, rows, loss, the accuracy flag and the accuracy if any.
      #expect(bytes.count == 4 + 8 + 8 + 8 + 1 + (report.accuracy == nil ? 0 : 8))
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

  @Test func aNegativeLossNoRowsAndABadFlagAreRefusedByName() {
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
    // Without an accuracy, nothing may follow the flag.
    var noAccuracy = bytes
    noAccuracy[28] = 0
    #expect(throws: DecodeError.trailingBytes(8)) { try WireCodec.decode(noAccuracy) }
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
