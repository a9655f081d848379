/// A table of examples: for each row, `featureCount` features and one label
/// (a regression target, or a class index 0..K-1 stored as a Double). Features
/// are one row-major array, so a mini-batch is gathered with plain copies and
/// handed to BLAS. Rows are numbered from 0 in file order; a push names its rows
/// by these numbers.
public struct Dataset: Equatable, Sendable {
  /// Features per row (D).
  public let featureCount: Int
  /// All features, `count × featureCount`, row-major.
  public let features: [Double]
  /// One label per row.
  public let labels: [Double]
  /// The features' column names (from the header, or `x` / `x1...`).
  public let featureNames: [String]
  /// The label's column name.
  public let labelName: String

  /// A dataset of `labels.count` rows; `features` holds `featureCount` values per row.
  public init(
    featureNames: [String], labelName: String, features: [Double], labels: [Double]
  ) {
    precondition(!featureNames.isEmpty, "a dataset needs at least one feature")
    precondition(features.count == featureNames.count * labels.count, "features and labels differ")
    self.featureCount = featureNames.count
    self.featureNames = featureNames
    self.labelName = labelName
    self.features = features
    self.labels = labels
  }

  /// A one-feature dataset (`x`, `label`) of `samples` as given: the tutorial's kind.
  public init(samples: [Sample]) {
    self.init(
      featureNames: ["x"], labelName: "label", features: samples.map(\.x),
      labels: samples.map(\.label))
  }

  /// The rows of a one-feature dataset as samples (row number, x, label).
  public var samples: [Sample] {
    precondition(featureCount == 1, "samples are rows of one-feature data")
    return labels.indices.map { Sample(index: $0, x: features[$0], label: labels[$0]) }
  }

  /// The tutorial's data: x = 1 → ê = −1, x = −1 → ê = 1.
  public static let seed = Dataset(samples: [
    Sample(index: 0, x: 1, label: -1), Sample(index: 1, x: -1, label: 1),
  ])

  /// Number of rows.
  public var count: Int { labels.count }

  /// The features of row `row`.
  public func features(ofRow row: Int) -> ArraySlice<Double> {
    features[(row * featureCount)..<((row + 1) * featureCount)]
  }

  /// FNV-1a over every row's feature bits then label bits: workers and the
  /// coordinator compare it to make sure they all read the same data.
  public var fingerprint: UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    func mix(_ bits: UInt64) {
      for shift in stride(from: 0, to: 64, by: 8) {
        hash = (hash ^ ((bits >> UInt64(shift)) & 0xFF)) &* 0x0000_0100_0000_01B3
      }
    }
    for row in 0..<count {
      for value in features(ofRow: row) { mix(value.bitPattern) }
      mix(labels[row].bitPattern)
    }
    return hash
  }

  /// The row numbers of `shard` (a contiguous block; see `Shard`).
  public func rows(of shard: Shard) -> Range<Int> { shard.rows(of: count) }
}
