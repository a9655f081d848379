#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Draws ranks 0..<count with probability proportional to 1/(rank + 1)^s, in
/// constant time a draw (Walker's alias method, built by Vose's algorithm): the
/// few common and many rare feature ids of click logs. The ranks are split in a
/// head (the `headCount` most common, a table small enough to stay in cache,
/// which most draws use) and a tail, each with its own alias table; a first
/// draw picks the part by its probability. A table takes 8 bytes a rank, a
/// column's keep threshold and alias in one word, so a draw touches one cache
/// line. Only `pow` comes from the C library (not even that for s = 1), so the
/// tables have the same bits on every machine whose `pow` agrees, as glibc's
/// (correctly rounded in practice) does.
struct ZipfSampler: Sendable {
  /// The most ranks in the head table (32 KB).
  static let headCount = 4096

  /// Ranks drawn from.
  let count: Int
  /// The head's ranks are 0..<`headSize`, the tail's `headSize`..<`count`.
  private let headSize: Int
  /// A first draw below this picks the head (its probability × 2^64, saturated).
  private let headThreshold: UInt64
  /// The alias table of the head's ranks.
  private let head: [UInt64]
  /// The alias table of the tail's ranks (empty when the head holds them all).
  private let tail: [UInt64]

  /// The tables for `count` ranks (1...2^31−1) with exponent `exponent` (> 0).
  init(count: Int, exponent: Double) {
    precondition(count >= 1 && count < Int(Int32.max), "rank count")
    self.count = count
    var weights = [Double](repeating: 0, count: count)
    for rank in 0..<count {
      let base = Double(rank + 1)
      weights[rank] = exponent == 1 ? 1 / base : 1 / pow(base, exponent)
    }
    headSize = min(count, Self.headCount)
    let headWeight = weights[0..<headSize].reduce(0, +)
    let tailWeight = weights[headSize...].reduce(0, +)
    let headProbability = headWeight / (headWeight + tailWeight)
    headThreshold =
      headProbability >= 1 ? UInt64.max : UInt64(headProbability * 0x1p64)
    head = Self.aliasTable(weights[0..<headSize])
    tail = headSize < count ? Self.aliasTable(weights[headSize...]) : []
  }

  /// One rank, from one or two 64-bit draws.
  @inline(__always)
  func next(using generator: inout SplitMix64) -> Int {
    if tail.isEmpty || generator.next() < headThreshold {
      return Self.draw(from: head, using: &generator)
    }
    return headSize + Self.draw(from: tail, using: &generator)
  }

  /// A column of `table` from one draw's high part, kept or aliased by its low part.
  @inline(__always)
  private static func draw(from table: [UInt64], using generator: inout SplitMix64) -> Int {
    let (column, coin) = generator.next().multipliedFullWidth(by: UInt64(table.count))
    let entry = table[Int(column)]
    return coin >> 32 < entry >> 32 ? Int(column) : Int(UInt32(truncatingIfNeeded: entry))
  }

  /// Vose's alias table for drawing positions of `weights` (offsets from its
  /// start) in proportion to them: per column, the chance (× 2^32) of keeping
  /// it in the high 32 bits, the position drawn otherwise in the low 32.
  private static func aliasTable(_ weights: ArraySlice<Double>) -> [UInt64] {
    let count = weights.count
    let total = weights.reduce(0, +)
    var scaled = weights.map { $0 * Double(count) / total }
    var keep = [Double](repeating: 1, count: count)
    var alias = Array(0..<UInt32(count))
    var small: [UInt32] = []
    var large: [UInt32] = []
    for column in 0..<count {
      if scaled[column] < 1 { small.append(UInt32(column)) } else { large.append(UInt32(column)) }
    }
    while let less = small.last, let more = large.last {
      small.removeLast()
      keep[Int(less)] = scaled[Int(less)]
      alias[Int(less)] = more
      scaled[Int(more)] = (scaled[Int(more)] + scaled[Int(less)]) - 1
      if scaled[Int(more)] < 1 {
        large.removeLast()
        small.append(more)
      }
    }
    // The columns left hold (up to rounding) probability 1: they keep their own
    // position, and their alias is themselves anyway.
    return (0..<count).map { column in
      let threshold = UInt64(min(keep[column] * 0x1p32, 0xFFFF_FFFF))
      return threshold << 32 | UInt64(alias[column])
    }
  }
}
