/// Examples with sparse features: per row, feature ids with their values (the
/// libsvm / svmlight kind), and a binary label 0 or 1. Stored compressed by row
/// (one array of ids, one of values, and where each row starts), so 10^6 rows of
/// ~40 features take memory for their nonzeros only. Rows are numbered from 0 in
/// file order; a push names its rows by these numbers.
public struct SparseDataset: Equatable, Sendable {
  /// `rowStarts[i]..<rowStarts[i + 1]` are row i's positions in `featureIDs` and `values`.
  public let rowStarts: [Int]
  /// Every row's feature ids, in file order within a row.
  public let featureIDs: [UInt64]
  /// Every row's feature values, aligned with `featureIDs`.
  public let values: [Double]
  /// One label per row, 0 or 1 (a file's -1 is read as 0).
  public let labels: [Double]

  /// A dataset of `labels.count` rows; `rowStarts` has one more entry than `labels`,
  /// starts at 0, never decreases and ends at `featureIDs.count`.
  public init(rowStarts: [Int], featureIDs: [UInt64], values: [Double], labels: [Double]) {
    precondition(rowStarts.count == labels.count + 1 && rowStarts.first == 0, "row starts")
    precondition(rowStarts.last == featureIDs.count && featureIDs.count == values.count, "rows")
    self.rowStarts = rowStarts
    self.featureIDs = featureIDs
    self.values = values
    self.labels = labels
  }

  /// Number of rows.
  public var count: Int { labels.count }

  /// The positions of row `row`'s features in `featureIDs` and `values`.
  @inlinable
  public func range(ofRow row: Int) -> Range<Int> { rowStarts[row]..<rowStarts[row + 1] }

  /// Nonzeros in all rows.
  public var nonzeroCount: Int { featureIDs.count }

  /// A 64-bit hash of every row's length, ids, value bits and label bits (FNV-1a
  /// style, a word at a time, so 10^7 nonzeros take milliseconds): workers and
  /// the coordinator compare it to make sure they all read the same data.
  public var fingerprint: UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    @inline(__always) func mix(_ word: UInt64) {
      hash = (hash ^ word) &* 0x100_0000_01B3
      hash ^= hash >> 29
    }
    for row in 0..<count {
      mix(UInt64(rowStarts[row + 1] - rowStarts[row]))
      for position in range(ofRow: row) {
        mix(featureIDs[position])
        mix(values[position].bitPattern)
      }
      mix(labels[row].bitPattern)
    }
    return hash
  }
}
