import Foundation
import TrainingMath
import WireProtocol

/// What the coordinator evaluates the model on: held-out data the workers do not
/// train on, the model (its features and classes fit the data), and how often.
public struct HeldOutData: Sendable {
  /// The held-out rows.
  public var dataset: Dataset
  /// The server's model.
  public var model: AnyDifferentiableModel
  /// Evaluate every this many versions.
  public var every: UInt64

  /// Held-out `dataset` for `model`, evaluated every `every` versions.
  public init(dataset: Dataset, model: AnyDifferentiableModel, every: UInt64) {
    self.dataset = dataset
    self.model = model
    self.every = every
  }
}

/// One evaluation of the model on held-out data: at which version, and how it did.
public struct HeldOutEvaluation: Equatable, Sendable {
  /// The version of the weights evaluated.
  public var version: UInt64
  /// Mean loss over the rows and, for classifiers, rows classified right.
  public var result: Evaluation
  /// Whether this is the evaluation at the end of the run.
  public var isFinal: Bool

  /// An evaluation at `version`.
  public init(version: UInt64, result: Evaluation, isFinal: Bool) {
    self.version = version
    self.result = result
    self.isFinal = isFinal
  }

  /// The report for the server. The wire takes finite losses only: a diverged
  /// model's infinite or NaN loss goes as the largest finite number.
  public var report: EvaluationReport {
    let loss = result.loss
    return EvaluationReport(
      version: version, rows: UInt64(max(1, result.count)),
      loss: loss.isNaN ? .greatestFiniteMagnitude : min(loss, .greatestFiniteMagnitude),
      accuracy: result.accuracy)
  }

  /// One line for people.
  public var text: String {
    "evaluation at v\(version)\(isFinal ? " (final)" : ""): test loss \(result.loss) over \(result.count) rows"
      + (result.accuracy.map { ", accuracy " + Self.percent($0) } ?? "")
  }

  /// One JSON object for machines: `type` "evaluation", `version`, `rows`,
  /// `test_loss` (null when not finite), `test_accuracy` (null for a regression
  /// model) and `final`.
  public var json: String {
    "{\"type\":\"evaluation\",\"version\":\(version),\"rows\":\(result.count),"
      + "\"test_loss\":\(JSON.number(result.loss)),"
      + "\"test_accuracy\":\(result.accuracy.map(JSON.number) ?? "null"),\"final\":\(isFinal)}"
  }

  /// `fraction` as a percentage with one decimal: "93.5%".
  public static func percent(_ fraction: Double) -> String {
    String(format: "%.1f%%", fraction * 100)
  }
}
