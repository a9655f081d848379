import Foundation
import TrainingMath
import WireProtocol

/// One evaluation of a sparse model on held-out data: the dense evaluation's
/// figures (mean log loss, accuracy at probability 0.5) and the ROC AUC, from
/// the rows of every key the test rows touch, pulled at one version.
public struct SparseHeldOutEvaluation: Equatable, Sendable {
  /// The loss and accuracy, as a dense model's evaluation says them.
  public var base: HeldOutEvaluation
  /// The area under the ROC curve (nil when the test data has one class only).
  public var auc: Double?

  /// The evaluation of `model` at the rows `values` (`rowWidth` per key of
  /// `keys`, every key the rows of `test` touch, sorted, read at `version`) on
  /// every row of `test`, scored by `SparseEvaluation`.
  public init(
    model: SparseModelSpec, test: SparseDataset, keys: [UInt64], values: [Double],
    version: UInt64, isFinal: Bool
  ) {
    let width = model.rowWidth
    let rows = Array(0..<test.count)
    let scores = SparseEvaluation.scores(
      model: model, data: test, rows: rows, batchSize: max(1, rows.count)
    ) { key in
      var low = 0
      var high = keys.count
      while low < high {
        let middle = (low + high) / 2
        if keys[middle] < key { low = middle + 1 } else { high = middle }
      }
      precondition(low < keys.count && keys[low] == key, "a test key was not pulled")
      return values[(low * width)..<((low + 1) * width)]
    }
    var correct = 0
    for (score, label) in zip(scores, test.labels)
    where (BinaryLogLoss.probability(score: score) >= 0.5) == (label == 1) {
      correct += 1
    }
    base = HeldOutEvaluation(
      version: version,
      result: Evaluation(
        count: scores.count,
        loss: BinaryMetrics.meanLogLoss(scores: scores, labels: test.labels) ?? .nan,
        correct: correct),
      isFinal: isFinal)
    auc = BinaryMetrics.auc(scores: scores, labels: test.labels)
  }

  /// The version of the rows evaluated.
  public var version: UInt64 { base.version }

  /// The report for the server: loss and accuracy, as a dense model's, and the AUC.
  public var report: EvaluationReport {
    var report = base.report
    report.auc = auc
    return report
  }

  /// The dense line, then ", AUC 0.xxxx".
  public var text: String {
    base.text + (auc.map { ", AUC " + String(format: "%.4f", $0) } ?? "")
  }

  /// The dense JSON object with `test_auc` (null for one class) before `final`.
  public var json: String {
    let tail = ",\"final\":\(base.isFinal)}"
    return String(base.json.dropLast(tail.count))
      + ",\"test_auc\":\(auc.map(JSON.number) ?? "null")" + tail
  }
}
