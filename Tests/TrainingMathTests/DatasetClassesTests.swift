import Testing

@testable import TrainingMath

@Suite struct DatasetClassesTests {
  private func dataset(labels: [Double]) -> Dataset {
    Dataset(
      featureNames: ["f"], labelName: "label", features: labels.map { _ in 0 }, labels: labels)
  }

  @Test func classCountIsDeclaredOrTheLargestLabelPlusOne() throws {
    let data = dataset(labels: [0, 2, 1, 2, 0])
    #expect(data.labelsAreClassIndices)
    #expect(try data.classCount() == 3)
    #expect(try data.classCount(declared: 5) == 5)
    #expect(data.rowsPerClass(classCount: 3) == [2, 1, 2])
    #expect(data.rowsPerClass(classCount: 4) == [2, 1, 2, 0])
  }

  @Test func labelsThatAreNotClassesAreNamedByRow() {
    let cases: [([Double], Int?, TrainingMathError)] = [
      (
        [0, 1, 2.5, -1], nil,
        .invalidClassLabel(
          row: 2, value: 2.5, reason: "is not a class index (an integer in 0...99999)")
      ),
      (
        [0, 1, -1], nil,
        .invalidClassLabel(
          row: 2, value: -1, reason: "is not a class index (an integer in 0...99999)")
      ),
      (
        [0, 3, 1.5], 3,
        .invalidClassLabel(
          row: 1, value: 3, reason: "is not a class index (an integer in 0...2 for 3 classes)")
      ),
      (
        [0, 1e6], nil,
        .invalidClassLabel(
          row: 1, value: 1e6, reason: "is not a class index (an integer in 0...99999)")
      ),
      (
        [0, 0], nil,
        .invalidClassCount("every label is 0: one class, and a classifier needs 2 or more")
      ),
      ([0, 1], 1, .invalidClassCount("must be 2...100000, got 1")),
      ([0, 1], 100_001, .invalidClassCount("must be 2...100000, got 100001")),
    ]
    for (labels, declared, error) in cases {
      #expect(throws: error, "\(labels) \(String(describing: declared))") {
        try dataset(labels: labels).classCount(declared: declared)
      }
    }
    #expect(
      TrainingMathError.invalidClassLabel(
        row: 2, value: 2.5, reason: "is not a class index (an integer in 0...2 for 3 classes)"
      ).description
        == "row 2 (counting data rows from 0): label 2.5 is not a class index (an integer in 0...2 for 3 classes)"
    )
  }

  @Test func regressionLabelsDoNotLookLikeClasses() throws {
    #expect(!dataset(labels: [0, 1, 0.5]).labelsAreClassIndices)
    #expect(!dataset(labels: [0, -1]).labelsAreClassIndices)
    #expect(!dataset(labels: [.nan]).labelsAreClassIndices)
    #expect(!(try Dataset.generate(rows: 100, seed: 1)).labelsAreClassIndices)
    #expect(!Dataset.seed.labelsAreClassIndices)
  }
}
