import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// Issue 9 item 6: at diverged weights the finite differences are inf − inf, the
/// audit's relative error NaN; the coordinator reported it as is, the server refused
/// the NaN, and the coordinator ended without a summary.
@Suite struct CoordinatorDivergenceTests {
  @Test func anAuditAtDivergedWeightsReportsAFiniteErrorTheServerAccepts() throws {
    let layout = ChainModel(layers: 3).layout
    // Finite weights whose product overflows: the loss at them is infinite.
    let record = AuditRecord(
      workerID: 0, sequence: 1, computedAtVersion: 1, appliedAtVersion: 2,
      modelName: ChainModel.name, weights: NamedTensors(layout: layout, values: [1e200, 1e200, 1]),
      dataset: DatasetIdentity(rows: 2, fingerprint: Dataset.seed.fingerprint),
      rows: [0],
      gradient: NamedTensors(layout: layout, values: [1, 1, 1]))
    let report = try AuditReport.audit(record, tolerance: 1e-7, dataset: .seed)
    #expect(report.audit!.maximumRawRelativeError.isNaN)
    // What the coordinator sent before: min(NaN, x) is NaN, which the decoder refuses.
    #expect(throws: DecodeError.self) {
      try WireCodec.decode(
        WireCodec.encode(
          .auditResult(
            AuditResult(
              workerID: 0, sequence: 1, passed: false,
              maximumRelativeError: min(
                report.audit!.maximumRawRelativeError, .greatestFiniteMagnitude)))))
    }
    #expect(!report.passed)
    let error = CoordinatorLoop.finite(report.audit!.maximumRawRelativeError)
    #expect(error == .greatestFiniteMagnitude)
    let message = WireMessage.auditResult(
      AuditResult(workerID: 0, sequence: 1, passed: false, maximumRelativeError: error))
    #expect(try WireCodec.decode(WireCodec.encode(message)) == message)
    #expect(CoordinatorLoop.finite(1e-3) == 1e-3)
  }
}
