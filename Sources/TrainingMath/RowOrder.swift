/// The order in which a worker visits its shard's rows in one epoch: a
/// permutation drawn with `SplitMix64` from (seed, shard index, epoch), so that
/// every run, and a push redone after a server restart, sees the same order.
///
/// It keeps its buffer: drawing the next epoch's order reuses the storage, so
/// a worker's steady state allocates nothing.
public struct RowOrder: Sendable {
  /// The seed every epoch's permutation derives from.
  public let seed: UInt64
  /// The shard index, so that workers of one run shuffle differently.
  public let stream: UInt64
  /// The epoch whose permutation `rows` holds (nil before the first draw).
  public private(set) var epoch: Int?
  /// The range `rows` permutes.
  public private(set) var range: Range<Int> = 0..<0
  /// The rows in visiting order: a permutation of `range`.
  public private(set) var rows: [Int] = []

  /// An order for the shard `stream` (its index) of a run seeded with `seed`.
  public init(seed: UInt64, stream: UInt64) {
    self.seed = seed
    self.stream = stream
  }

  /// Draws epoch `epoch`'s permutation of `range` into `rows` (Fisher–Yates),
  /// unless it already holds it.
  public mutating func draw(_ range: Range<Int>, epoch: Int) {
    if self.epoch == epoch, self.range == range { return }
    self.epoch = epoch
    self.range = range
    if rows.count != range.count { rows = Array(range) }
    var generator = SplitMix64(seed: Self.key(seed: seed, stream: stream, epoch: epoch))
    // In the buffer's storage: `swapAt` and the array's checks allocated in debug builds.
    rows.withUnsafeMutableBufferPointer { order in
      for index in order.indices { order[index] = range.lowerBound + index }
      var index = order.count - 1
      while index > 0 {
        let other = Self.below(index + 1, using: &generator)
        let row = order[index]
        order[index] = order[other]
        order[other] = row
        index -= 1
      }
    }
  }

  /// Appends the rows at `positions` of the order to `batch`, positions
  /// counted like the rows of `range` (from its first row): a batch of the
  /// epoch, taken in place without copying the order.
  public func appendRows(at positions: Range<Int>, to batch: inout [Int]) {
    let first = range.lowerBound
    for position in positions { batch.append(rows[position - first]) }
  }

  /// The generator's seed for one epoch: seed, stream and epoch mixed through
  /// SplitMix64 one after the other, so nearby values give unrelated orders.
  static func key(seed: UInt64, stream: UInt64, epoch: Int) -> UInt64 {
    var mixer = SplitMix64(seed: seed)
    mixer = SplitMix64(seed: mixer.next() ^ stream)
    mixer = SplitMix64(seed: mixer.next() ^ UInt64(truncatingIfNeeded: epoch))
    return mixer.next()
  }

  /// A number in `0..<bound` from the high half of a 64×64-bit product (the
  /// bias, below 2^-40 for shards under 2^24 rows, does not matter here); the
  /// standard library's `random(in:using:)` could change between releases.
  static func below(_ bound: Int, using generator: inout SplitMix64) -> Int {
    Int(generator.next().multipliedFullWidth(by: UInt64(bound)).high)
  }
}
