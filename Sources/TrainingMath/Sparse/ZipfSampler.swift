#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Draws ranks 0..<count with probability proportional to 1/(rank + 1)^s, in
/// constant time a draw (Walker's alias method, built by Vose's algorithm): the
/// few common and many rare feature ids of click logs. Building takes O(count);
/// the table is 8 bytes a rank, a column's keep threshold and alias in one word
/// so a draw touches one cache line. With s = 1 only +, −, ×, ÷ are used, so the
/// table and the draws have the same bits on every machine.
struct ZipfSampler: Sendable {
  /// Ranks drawn from.
  let count: Int
  /// Per column: the high 32 bits are the chance (× 2^32) of keeping the
  /// column's own rank, the low 32 bits the rank drawn otherwise.
  private let columns: [UInt64]

  /// The table for `count` ranks (1...2^31−1) with exponent `exponent` (> 0).
  init(count: Int, exponent: Double) {
    precondition(count >= 1 && count < Int(Int32.max), "rank count")
    self.count = count
    var scaled = [Double](repeating: 0, count: count)
    var total = 0.0
    for rank in 0..<count {
      let base = Double(rank + 1)
      scaled[rank] = exponent == 1 ? 1 / base : 1 / pow(base, exponent)
      total += scaled[rank]
    }
    for rank in 0..<count { scaled[rank] = scaled[rank] * Double(count) / total }
    var keep = [Double](repeating: 1, count: count)
    var alias = Array(0..<UInt32(count))
    var small: [UInt32] = []
    var large: [UInt32] = []
    for rank in 0..<count {
      if scaled[rank] < 1 { small.append(UInt32(rank)) } else { large.append(UInt32(rank)) }
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
    // rank, and their alias is themselves anyway.
    columns = (0..<count).map { column in
      let threshold = UInt64(min(keep[column] * 0x1p32, 0xFFFF_FFFF))
      return threshold << 32 | UInt64(alias[column])
    }
  }

  /// One rank, from one 64-bit draw: its high part picks the column, its low part the coin.
  @inline(__always)
  func next(using generator: inout SplitMix64) -> Int {
    let (column, coin) = generator.next().multipliedFullWidth(by: UInt64(count))
    let entry = columns[Int(column)]
    return coin >> 32 < entry >> 32 ? Int(column) : Int(UInt32(truncatingIfNeeded: entry))
  }
}
