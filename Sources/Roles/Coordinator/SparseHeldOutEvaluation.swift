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
  /// `batch.keys`, read at `version`) on `batch`, every row of `test`.
  public init(
    model: SparseModelSpec, test: SparseDataset, batch: SparseBatch, values: [Double],
    version: UInt64, isFinal: Bool
  ) {
    var sums = [Double](repeating: 0, count: model.rowWidth - 1)
    var scores: [Double] = []
    var labels: [Double] = []
    scores.reserveCapacity(batch.rows.count)
    var correct = 0
    for index in batch.rows.indices {
      let score = model.score(
        ofBatchRow: index, in: batch, data: test, values: values, factorSums: &sums)
      let label = test.labels[batch.rows[index]]
      scores.append(score)
      labels.append(label)
      if (BinaryLogLoss.probability(score: score) >= 0.5) == (label == 1) { correct += 1 }
    }
    base = HeldOutEvaluation(
      version: version,
      result: Evaluation(
        count: scores.count,
        loss: BinaryMetrics.meanLogLoss(scores: scores, labels: labels) ?? .nan,
        correct: correct),
      isFinal: isFinal)
    auc = BinaryMetrics.auc(scores: scores, labels: labels)
  }

  /// The version of the rows evaluated.
  public var version: UInt64 { base.version }

  /// The report for the server (loss and accuracy, as a dense model's).
  public var report: EvaluationReport { base.report }

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
