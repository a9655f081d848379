import Testing

@testable import TrainingMath

@Suite struct GeneratedDatasetTests {
  @Test func classificationIsDeterministicBalancedAndNamed() throws {
    let a = try Dataset.generateClassification(features: 5, classes: 3, rows: 301, seed: 9)
    let b = try Dataset.generateClassification(features: 5, classes: 3, rows: 301, seed: 9)
    let c = try Dataset.generateClassification(features: 5, classes: 3, rows: 301, seed: 10)
    #expect(a.features.map(\.bitPattern) == b.features.map(\.bitPattern))
    #expect(a.labels == b.labels)
    #expect(a.fingerprint == b.fingerprint && a.fingerprint != c.fingerprint)
    #expect(a.featureNames == ["f0", "f1", "f2", "f3", "f4"] && a.labelName == "label")
    #expect(a.count == 301 && a.features.count == 301 * 5)
    #expect(try a.classCount() == 3)
    #expect(a.rowsPerClass(classCount: 3) == [101, 100, 100])
    #expect(a.features.allSatisfy { $0.isFinite })
    let read = try Dataset(csv: a.csv())
    #expect(read.features.map(\.bitPattern) == a.features.map(\.bitPattern))
    #expect(read.labels == a.labels && read.featureNames == a.featureNames)
  }

  /// The bits on every machine: only +, -, ×, ÷ and square roots go into them.
  @Test func classificationBitsArePinned() throws {
    let small = try Dataset.generateClassification(features: 3, classes: 4, rows: 10, seed: 5)
    #expect(small.fingerprint == 5_874_543_050_523_753_052)
    let one = try Dataset.generateClassification(features: 1, classes: 2, rows: 2, seed: 1)
    #expect(
      one.features.map(\.bitPattern) == [13_835_392_768_260_194_886, 13_836_176_170_962_577_964])
  }

  /// The regression generator without noise, pinned: `pstrain data generate` must keep
  /// writing the same bytes.
  @Test func regressionBitsArePinned() throws {
    let ten = try Dataset.generate(rows: 10, seed: 1)
    #expect(ten.fingerprint == 5_053_826_526_962_443_617)
    #expect(
      try Dataset.generate(rows: 3, seed: 1).csv()
        == "x,label\n0.1331231503445618,-0.1331231503445618\n"
        + "0.49156351452540226,-0.49156351452540226\n0.9420055071735924,-0.9420055071735924\n")
  }

  /// Two classes of each class's own shape: the class means of the features differ
  /// (what a linear model sees), and the spread around them is wider than the noise
  /// (the two arms), so the generator is neither trivial nor pure noise.
  @Test func classesHaveDistinctMeansAndTwoArms() throws {
    let data = try Dataset.generateClassification(features: 2, classes: 2, rows: 4000, seed: 3)
    var sums = [[0.0, 0.0], [0.0, 0.0]]
    var squares = [[0.0, 0.0], [0.0, 0.0]]
    for row in 0..<data.count {
      let label = Int(data.labels[row])
      for (j, value) in data.features(ofRow: row).enumerated() {
        sums[label][j] += value
        squares[label][j] += value * value
      }
    }
    let n = Double(data.count / 2)
    let means = sums.map { $0.map { $0 / n } }
    let variances = (0..<2).map { k in
      (0..<2).map { j in squares[k][j] / n - means[k][j] * means[k][j] }
    }
    let gap =
      ((means[0][0] - means[1][0]) * (means[0][0] - means[1][0])
      + (means[0][1] - means[1][1]) * (means[0][1] - means[1][1])).squareRoot()
    #expect(gap > 0.5)
    #expect(variances.allSatisfy { $0.reduce(0, +) > 2.5 })
  }

  @Test func boundsAreChecked() {
    let cases: [(Int, Int, Int, String)] = [
      (0, 2, 10, "features must be 1...100000, got 0"),
      (100_001, 2, 10, "features must be 1...100000, got 100001"),
      (2, 1, 10, "classes must be 2...1000, got 1"),
      (2, 1001, 10, "classes must be 2...1000, got 1001"),
      (2, 2, 0, "rows must be 1...100000000, got 0"),
      (2, 2, 100_000_001, "rows must be 1...100000000, got 100000001"),
      (100_000, 2, 10_001, "rows × features must be at most 1000000000, got 10001 × 100000"),
    ]
    for (features, classes, rows, message) in cases {
      #expect(throws: TrainingMathError.invalidGeneratorSettings(message)) {
        try Dataset.generateClassification(
          features: features, classes: classes, rows: rows, seed: 1)
      }
    }
  }
}
