/// Which of the 256 sequence numbers below a worker's highest applied push were
/// applied too: bit i stands for sequence `highest - 1 - i`. The server keeps one
/// per worker (in checkpoints too) to apply each push exactly once when pushes
/// overtake each other, and tells a rejoining worker, which then knows which of
/// its pushes in flight to send again. Four words, no allocation.
public struct AppliedBitmap: Hashable, Sendable {
  /// Bits kept.
  public static let width = 256
  /// Words of 64 bits.
  public static let wordCount = 4

  private var w0: UInt64 = 0
  private var w1: UInt64 = 0
  private var w2: UInt64 = 0
  private var w3: UInt64 = 0

  /// No bit set.
  public init() {}

  /// Bits from `words`, lowest first (missing words are zero, extra ones ignored).
  public init(words: some Sequence<UInt64>) {
    for (index, word) in words.prefix(Self.wordCount).enumerated() { setWord(index, word) }
  }

  /// Word `index` (0 holds bits 0–63), 0 outside the bitmap.
  public func word(_ index: Int) -> UInt64 {
    switch index {
    case 0: w0
    case 1: w1
    case 2: w2
    case 3: w3
    default: 0
    }
  }

  /// Sets word `index` (ignored outside the bitmap); for the codecs.
  mutating func setWord(_ index: Int, _ value: UInt64) {
    switch index {
    case 0: w0 = value
    case 1: w1 = value
    case 2: w2 = value
    case 3: w3 = value
    default: break
    }
  }

  /// The words up to the last non-zero one: what the wire and checkpoints carry.
  public var significantWordCount: Int {
    (0..<Self.wordCount).last { word($0) != 0 }.map { $0 + 1 } ?? 0
  }

  /// Whether bit `bit` is set (false outside the bitmap).
  public subscript(bit: Int) -> Bool {
    guard bit >= 0, bit < Self.width else { return false }
    return word(bit / 64) & (1 << UInt64(bit % 64)) != 0
  }

  /// Sets bit `bit` (ignored outside the bitmap).
  public mutating func set(_ bit: Int) {
    guard bit >= 0, bit < Self.width else { return }
    setWord(bit / 64, word(bit / 64) | 1 << UInt64(bit % 64))
  }

  /// The bitmap with every bit moved `count` places up (bit i to i + count); bits
  /// moved past the top are dropped.
  public func shiftedUp(by count: Int) -> AppliedBitmap {
    guard count > 0 else { return self }
    guard count < Self.width else { return AppliedBitmap() }
    let (words, bits) = (count / 64, UInt64(count % 64))
    var result = AppliedBitmap()
    for index in 0..<Self.wordCount {
      let low = word(index - words)
      let carried = bits == 0 ? 0 : word(index - words - 1) >> (64 - bits)
      result.setWord(index, low << bits | carried)
    }
    return result
  }
}
