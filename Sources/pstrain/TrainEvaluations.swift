import Foundation
import Roles

/// One evaluation line of the coordinator's `--json` output (`HeldOutEvaluation.json`),
/// as `train` reads it back; nil for any other line.
struct CoordinatorEvaluationLine: Decodable, Equatable {
  var type: String
  var version: UInt64
  var rows: Int
  /// Null in the line when the loss was not finite (a diverged model).
  var testLoss: Double?
  /// Null for a regression model.
  var testAccuracy: Double?
  var final: Bool

  private enum CodingKeys: String, CodingKey {
    case type, version, rows, final
    case testLoss = "test_loss"
    case testAccuracy = "test_accuracy"
  }

  /// The evaluation on `line`, or nil when the line is not one. Cheap for other
  /// lines: only those naming the type are decoded.
  init?(_ line: String) {
    guard line.contains("\"type\":\"evaluation\""),
      let evaluation = try? JSONDecoder().decode(Self.self, from: Data(line.utf8)),
      evaluation.type == "evaluation"
    else { return nil }
    self = evaluation
  }

  /// The test loss and accuracy in a few words: "test loss 0.0123, accuracy 93.5%".
  var shortText: String {
    "test loss \(testLoss.map { String(format: "%.4g", $0) } ?? "not finite")"
      + (testAccuracy.map { ", accuracy \(HeldOutEvaluation.percent($0))" } ?? "")
  }
}

/// The coordinator's evaluations on held-out data over a run, as `train` reports them:
/// the last (the final one when the coordinator finished) and the history, one point
/// per evaluated version with the training loss at that version when it was measured.
struct EvaluationHistory {
  /// One evaluation, beside the loss on the training data at the same version.
  struct Point: Equatable {
    var version: UInt64
    /// The loss over the training data at `version`, if a loss-curve point was taken there.
    var trainLoss: Double?
    var testLoss: Double?
    var testAccuracy: Double?
  }

  /// The evaluations by version, in order.
  var points: [Point]
  /// The last evaluation.
  var last: CoordinatorEvaluationLine?

  /// The history of the evaluation lines among `lines` (a later line for the same version
  /// wins), with training losses from `trainLoss` (loss-curve points by version).
  init(coordinatorLines lines: [String], trainLoss: [UInt64: Double]) {
    var byVersion: [UInt64: CoordinatorEvaluationLine] = [:]
    var last: CoordinatorEvaluationLine?
    for line in lines {
      guard let evaluation = CoordinatorEvaluationLine(line) else { continue }
      byVersion[evaluation.version] = evaluation
      last = evaluation
    }
    self.last = last
    points = byVersion.keys.sorted().map { version in
      let evaluation = byVersion[version]!
      return Point(
        version: version, trainLoss: trainLoss[version], testLoss: evaluation.testLoss,
        testAccuracy: evaluation.testAccuracy)
    }
  }

  /// The latest evaluation among the coordinator's `lines`, for the progress line.
  static func latest(in lines: [String]) -> CoordinatorEvaluationLine? {
    for line in lines.reversed() {
      if let evaluation = CoordinatorEvaluationLine(line) { return evaluation }
    }
    return nil
  }

  /// The JSON members `test_loss`, `test_accuracy` (of the last evaluation; null without
  /// one, or for a regression model) and `history` (no braces).
  var jsonMembers: String {
    let history = points.map { point in
      "{\"version\":\(point.version),\"train_loss\":\(optional(point.trainLoss)),"
        + "\"test_loss\":\(optional(point.testLoss)),"
        + "\"test_accuracy\":\(optional(point.testAccuracy))}"
    }
    return "\"test_loss\":\(optional(last?.testLoss)),"
      + "\"test_accuracy\":\(optional(last?.testAccuracy)),"
      + "\"history\":[\(history.joined(separator: ","))]"
  }

  /// The `test` line of the text summary, or nil without evaluations.
  var textLine: String? {
    guard let last else { return nil }
    return
      "  test        loss \(last.testLoss.map { "\($0)" } ?? "not finite") (mean over \(last.rows) held-out rows at version \(last.version))"
      + (last.testAccuracy.map { ", accuracy \(HeldOutEvaluation.percent($0))" } ?? "")
  }

  private func optional(_ value: Double?) -> String { value.map(JSON.number) ?? "null" }
}
