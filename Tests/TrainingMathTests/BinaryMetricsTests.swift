import Testing

@testable import TrainingMath

@Suite struct BinaryMetricsTests {
  /// The AUC by its definition: over every positive–negative pair, 1 when the
  /// positive scores higher, ½ on a tie.
  private func pairwiseAUC(scores: [Double], labels: [Double]) -> Double {
    var won = 0.0
    var pairs = 0.0
    for p in scores.indices where labels[p] == 1 {
      for n in scores.indices where labels[n] != 1 {
        pairs += 1
        if scores[p] > scores[n] { won += 1 } else if scores[p] == scores[n] { won += 0.5 }
      }
    }
    return won / pairs
  }

  @Test func perfectReversedAndTiedRankings() {
    #expect(BinaryMetrics.auc(scores: [0.1, 0.2, 0.8, 0.9], labels: [0, 0, 1, 1]) == 1)
    #expect(BinaryMetrics.auc(scores: [0.9, 0.8, 0.2, 0.1], labels: [0, 0, 1, 1]) == 0)
    #expect(BinaryMetrics.auc(scores: [0.5, 0.5, 0.5, 0.5], labels: [0, 1, 0, 1]) == 0.5)
    // One tied pair of four: (1 + 1 + 1 + ½) / 4.
    #expect(BinaryMetrics.auc(scores: [0.1, 0.5, 0.5, 0.9], labels: [0, 0, 1, 1]) == 0.875)
    #expect(BinaryMetrics.auc(scores: [-0.0, 0.0], labels: [1, 0]) == 0.5)
  }

  @Test func undefinedWithoutBothClasses() {
    #expect(BinaryMetrics.auc(scores: [1, 2], labels: [1, 1]) == nil)
    #expect(BinaryMetrics.auc(scores: [1, 2], labels: [0, 0]) == nil)
    #expect(BinaryMetrics.auc(scores: [], labels: []) == nil)
    #expect(BinaryMetrics.meanLogLoss(scores: [], labels: []) == nil)
  }

  @Test func matchesPairwiseDefinitionWithManyTies() {
    var generator = SplitMix64(seed: 17)
    for _ in 0..<50 {
      let count = 1 + Int(generator.next() % 200)
      let scores = (0..<count).map { _ in Double(generator.next() % 7) - 3 }
      let labels = (0..<count).map { _ in Double(generator.next() % 2) }
      guard labels.contains(1), labels.contains(0) else { continue }
      let fast = BinaryMetrics.auc(scores: scores, labels: labels)!
      #expect(abs(fast - pairwiseAUC(scores: scores, labels: labels)) <= 1e-12)
    }
  }

  @Test func nanScoresRankTogetherAboveNumbers() {
    let nan = Double.nan
    #expect(BinaryMetrics.auc(scores: [nan, 1e300], labels: [1, 0]) == 1)
    #expect(BinaryMetrics.auc(scores: [nan, nan, 0], labels: [1, 0, 0]) == 0.75)
  }

  @Test func meanLogLossOfRawScores() {
    let loss = BinaryMetrics.meanLogLoss(scores: [0, 0], labels: [1, 0])!
    #expect(abs(loss - 0.693_147_180_559_945_3) <= 1e-15)
    // Large scores stay finite: log(1 + e^800) − 800 ≈ 0, and 800 when wrong.
    #expect(BinaryMetrics.meanLogLoss(scores: [800, -800], labels: [1, 1]) == 400)
  }
}
