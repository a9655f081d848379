/// Quality figures for a binary classifier from its raw scores and 0/1 labels:
/// the mean log loss and the area under the ROC curve. Shared by the sparse
/// evaluation (a model's test figures) and the click generator (its teacher's AUC).
public enum BinaryMetrics {
  /// The area under the ROC curve of `scores` against `labels` (1 positive, any
  /// other value negative): the probability that a random positive scores above a
  /// random negative, a tie counting one half. Sorts once, O(n log n). Only the
  /// order of the scores matters, so raw log-odds and probabilities give the same
  /// figure. NaN scores rank above every number, tied with each other. Nil when
  /// there are no positives or no negatives (the area is undefined).
  public static func auc(scores: [Double], labels: [Double]) -> Double? {
    precondition(scores.count == labels.count, "one label per score")
    var order = Array(scores.indices)
    order.sort { ranksBelow(scores[$0], scores[$1]) }
    var negativesBelow = 0.0
    var pairsWon = 0.0
    var positives = 0.0
    var start = 0
    while start < order.count {
      var end = start + 1
      while end < order.count && !ranksBelow(scores[order[start]], scores[order[end]]) { end += 1 }
      var groupPositives = 0.0
      for index in order[start..<end] where labels[index] == 1 { groupPositives += 1 }
      let groupNegatives = Double(end - start) - groupPositives
      pairsWon += groupPositives * negativesBelow + 0.5 * groupPositives * groupNegatives
      negativesBelow += groupNegatives
      positives += groupPositives
      start = end
    }
    guard positives > 0, negativesBelow > 0 else { return nil }
    return pairsWon / (positives * negativesBelow)
  }

  /// Whether score `a` ranks strictly below `b`: numbers by value (−0 ties +0),
  /// every NaN above every number and tied with the other NaNs.
  private static func ranksBelow(_ a: Double, _ b: Double) -> Bool {
    a < b || (!a.isNaN && b.isNaN)
  }

  /// The mean binary log loss of raw scores (log-odds) against 0/1 labels,
  /// computed without overflow for large |score| (`BinaryLogLoss.loss`). Nil for
  /// no examples.
  public static func meanLogLoss(scores: [Double], labels: [Double]) -> Double? {
    precondition(scores.count == labels.count, "one label per score")
    guard !scores.isEmpty else { return nil }
    var total = 0.0
    for index in scores.indices {
      total += BinaryLogLoss.loss(score: scores[index], label: labels[index])
    }
    return total / Double(scores.count)
  }
}
