/// Worker `index` of `count`: which contiguous block of rows a worker trains on.
///
/// Rows `[index·n / count, (index+1)·n / count)` (integer division) of an
/// n-row dataset: the blocks are disjoint, cover every row, and differ in size
/// by at most one.
public struct Shard: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// Largest accepted shard count.
  public static let maximumCount = 65_536

  /// This worker's shard, 0-based.
  public let index: Int
  /// Number of shards.
  public let count: Int

  /// The whole: shard 0 of 1.
  public static let whole = try! Shard(index: 0, count: 1)

  /// Shard `index` of `count`; `0 ≤ index < count ≤ 65536`.
  public init(index: Int, count: Int) throws(TrainingMathError) {
    guard count >= 1, count <= Self.maximumCount else {
      throw .invalidShard("shard count must be 1...\(Self.maximumCount), got \(count)")
    }
    guard index >= 0, index < count else {
      throw .invalidShard("shard index must be 0...\(count - 1), got \(index)")
    }
    self.index = index
    self.count = count
  }

  /// Parses `I/N`, e.g. `0/2`.
  public init(parsing text: String) throws(TrainingMathError) {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
      throw .invalidShard("expected I/N such as 0/2, got \"\(text)\"")
    }
    try self.init(index: index, count: count)
  }

  /// The half-open row range of this shard in a dataset of `rows` rows.
  public func rows(of rows: Int) -> Range<Int> {
    (index * rows / count)..<((index + 1) * rows / count)
  }

  public var description: String { "\(index)/\(count)" }
}
