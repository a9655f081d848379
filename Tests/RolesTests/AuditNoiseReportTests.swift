import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// How an audit below rounding noise is told (issue 9 item 9): not "ok" with a
/// relative error of 0.35, but what it is, with the gradient's size.
struct AuditNoiseReportTests {
  func record(weights: [Double]) throws -> AuditRecord {
    let model = ChainModel(layers: 3)
    let samples = [Sample(index: 0, x: 1, label: -1)]
    let gradient = Objective(model: model).gradient(weights: weights, samples: samples)
    return AuditRecord(
      workerID: 2, sequence: 40, computedAtVersion: 80, appliedAtVersion: 81, modelName: "chain",
      weights: NamedTensors(layout: model.layout, values: weights),
      dataset: DatasetIdentity(rows: 2, fingerprint: Dataset.seed.fingerprint), rows: [0],
      gradient: NamedTensors(layout: model.layout, values: gradient))
  }

  @Test func theTextSaysBelowRoundingNoiseWithTheGradientsSize() throws {
    let report = try AuditReport.audit(
      record(weights: [1, 1, (-1.0).nextUp]),
      tolerance: GradientAuditor<ChainModel>.defaultTolerance, dataset: .seed)
    #expect(!report.audit!.isConclusive)
    let magnitude = AuditReport.approximately(report.audit!.gradientMagnitude)
    #expect(magnitude.hasPrefix("~") && magnitude.hasSuffix("e-16"))
    #expect(
      report.text
        == "audit noise worker 2 push 40 at v80: below rounding noise (the gradients are \(magnitude): nothing left to audit), 3 coordinates + 1 direction; replay exact: 3 coordinates identical"
    )
    #expect(!report.text.contains("rel err"))
    #expect(report.json.contains("\"conclusive\":false"))
    #expect(report.json.contains("\"gradient_magnitude\":\(report.audit!.gradientMagnitude)"))
    #expect(report.json.contains("\"detectable_relative_error\":"))
  }

  @Test func aConclusiveAuditStillShowsItsRelativeError() throws {
    let report = try AuditReport.audit(
      record(weights: ChainModel.seedWeights),
      tolerance: GradientAuditor<ChainModel>.defaultTolerance, dataset: .seed)
    #expect(report.text.hasPrefix("audit ok    worker 2 push 40 at v80: max rel err "))
  }

  @Test func theTallyKeepsTheLargestGradientBelowNoise() throws {
    var tally = AuditTally()
    let tolerance = GradientAuditor<ChainModel>.defaultTolerance
    let small = try AuditReport.audit(
      record(weights: [1, 1, (-1.0).nextUp]), tolerance: tolerance, dataset: .seed)
    let exact = try AuditReport.audit(
      record(weights: [1, 1, -1]), tolerance: tolerance, dataset: .seed)
    tally.add(small)
    tally.add(exact)
    #expect(tally.inconclusive == 2)
    #expect(tally.largestGradientBelowNoise == small.audit!.gradientMagnitude)
    #expect(
      AuditReport.belowRoundingNoise(magnitude: 0)
        == "below rounding noise (the gradients are 0: nothing left to audit)")
    #expect(
      AuditReport.belowRoundingNoise(magnitude: 1.2e-15)
        == "below rounding noise (the gradients are ~1e-15: nothing left to audit)")
  }

  /// The coordinator tells the server whether the audit was above noise, and
  /// the gradient's size, so `pstrain status` can say so too.
  @Test func theServerKeepsTheNoiseVerdictForStatus() throws {
    let server = makeServer(.async)
    let result = AuditResult(
      workerID: 2, sequence: 40, passed: true, maximumRelativeError: 0.351, conclusive: false,
      gradientMagnitude: 2.2e-16)
    _ = server.receive(.auditResult(result), from: peerC, now: 0)
    guard
      case .status(let status) = server.receive(.statusRequest, from: peerC, now: 1).first?.message
    else {
      Issue.record("no status")
      return
    }
    let decoded = try WireCodec.decode(WireCodec.encode(.status(status)))
    guard case .status(let back) = decoded else { return }
    #expect(back.lastAudit == result)
  }

  /// The two new fields are checked like the others.
  @Test func aBadNoiseVerdictIsRefused() throws {
    let result = AuditResult(
      workerID: 1, sequence: 2, passed: true, maximumRelativeError: 0, conclusive: true,
      gradientMagnitude: 1e-3)
    var bytes = WireCodec.encode(.auditResult(result))
    // Header 4, worker 4, sequence 8, passed 1, error 8: the conclusive flag.
    bytes[25] = 2
    #expect(
      throws: DecodeError.outOfRange(field: "audit conclusive", value: "2", allowed: "0 or 1")
    ) { try WireCodec.decode(bytes) }
    bytes[25] = 1
    withUnsafeBytes(of: (-1.0).bitPattern.littleEndian) { bytes.replaceSubrange(26..<34, with: $0) }
    #expect(
      throws: DecodeError.outOfRange(
        field: "audit gradient magnitude", value: "-1.0", allowed: ">= 0")
    ) { try WireCodec.decode(bytes) }
  }
}
