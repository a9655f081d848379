/// Labels read as class indices 0..K-1, for classification.
extension Dataset {
  /// The most classes a dataset may have: a bound so that regression targets
  /// read as classes (label 1e9 → a billion outputs) fail clearly.
  public static let maximumClassCount = 100_000

  /// Whether every label is an integer in 0..<`maximumClassCount`, so that the
  /// data can be read as classes (regression targets almost never are).
  public var labelsAreClassIndices: Bool {
    labels.allSatisfy(Self.isClassIndex)
  }

  /// The number of classes K, checking that every label is a class index: an
  /// integer in 0..K-1. K is `declared` if given (2...`maximumClassCount`), else
  /// the largest label + 1, which must be at least 2. The error names the first
  /// offending row (counting data rows from 0) and its label.
  public func classCount(declared: Int? = nil) throws(TrainingMathError) -> Int {
    if let declared {
      guard declared >= 2, declared <= Self.maximumClassCount else {
        throw .invalidClassCount("must be 2...\(Self.maximumClassCount), got \(declared)")
      }
    }
    let limit = declared ?? Self.maximumClassCount
    if let row = labels.firstIndex(where: { !Self.isClassIndex($0) || $0 >= Double(limit) }) {
      let range = declared.map { "0...\($0 - 1) for \($0) classes" } ?? "0...\(limit - 1)"
      throw .invalidClassLabel(
        row: row, value: labels[row], reason: "is not a class index (an integer in \(range))")
    }
    guard let declared else {
      let largest = Int(labels.max() ?? 0)
      guard largest >= 1 else {
        throw .invalidClassCount("every label is 0: one class, and a classifier needs 2 or more")
      }
      return largest + 1
    }
    return declared
  }

  /// How many rows have each label 0..<`classCount` (labels must be class
  /// indices below it; see `classCount(declared:)`).
  public func rowsPerClass(classCount: Int) -> [Int] {
    var counts = [Int](repeating: 0, count: classCount)
    for label in labels { counts[Int(label)] += 1 }
    return counts
  }

  private static func isClassIndex(_ label: Double) -> Bool {
    label >= 0 && label < Double(maximumClassCount) && label.rounded(.towardZero) == label
  }
}
