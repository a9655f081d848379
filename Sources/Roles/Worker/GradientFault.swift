import TrainingMath

/// A deliberate gradient fault, for testing that audits catch bad workers.
///
/// Written as comma-separated `key=value` items:
/// - `scale=F`: multiply the whole gradient by F;
/// - `flip=K`: negate coordinate K (0-based; may repeat);
/// - `bitflip=K:B`: flip bit B (0...63) of coordinate K's Float64 bits (may repeat);
/// - `stale=K`: compute at the weights received K replies earlier while still
///   claiming the newest version, as a worker with a stale cache would;
/// - `sample=S`: compute the gradient of other rows than the push names: row r
///   is read as row (r + S) mod the dataset's rows;
/// - `after=V`: strike only pushes computed at server version V or later;
/// - `rate=P` (0 < P <= 1): strike only a fraction P of pushes, chosen by a
///   hash of the worker id and the push's sequence number.
///
/// The items combine: every corruption applies to each push struck.
public struct GradientFault: Equatable, Sendable, CustomStringConvertible {
  /// One bit flipped in one coordinate's Float64 representation.
  public struct BitFlip: Equatable, Sendable {
    /// The coordinate (0-based).
    public var coordinate: Int
    /// The bit, 0 (the lowest mantissa bit) to 63 (the sign).
    public var bit: Int

    /// Bit `bit` of coordinate `coordinate`.
    public init(coordinate: Int, bit: Int) {
      self.coordinate = coordinate
      self.bit = bit
    }
  }

  /// Factor applied to every coordinate.
  public var scale: Double = 1
  /// Coordinates negated.
  public var flipped: [Int] = []
  /// Bits flipped.
  public var bitFlips: [BitFlip] = []
  /// Replies of staleness.
  public var staleness: Int = 0
  /// How far the rows read are shifted from the rows claimed (0: not shifted).
  public var sampleShift: Int = 0
  /// The first server version whose pushes are struck.
  public var afterVersion: UInt64 = 0
  /// The fraction of pushes struck.
  public var rate: Double = 1

  /// No fault.
  public static let none = GradientFault()

  /// No fault.
  public init() {}

  /// The forms `init(parsing:)` accepts, for error messages and help.
  public static let forms =
    "scale=F, flip=K, bitflip=K:B, stale=K, sample=S, after=V, rate=P; combine with commas"

  /// Parses a fault specification such as `scale=1.000001`, `flip=1,stale=2` or
  /// `bitflip=3:12,after=50,rate=0.5`.
  public init(parsing text: String) throws(RoleError) {
    for item in text.split(separator: ",") {
      let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2 else {
        throw .invalidArgument("fault \"\(item)\" is not key=value (\(Self.forms))")
      }
      let value = parts[1]
      switch parts[0] {
      case "scale":
        guard let factor = Double(value), factor.isFinite else {
          throw .invalidArgument("fault scale needs a finite number, got \"\(value)\"")
        }
        scale = factor
      case "flip":
        guard let index = Int(value), index >= 0 else {
          throw .invalidArgument("fault flip needs a coordinate index >= 0, got \"\(value)\"")
        }
        flipped.append(index)
      case "bitflip":
        let halves = value.split(separator: ":", omittingEmptySubsequences: false)
        guard halves.count == 2, let index = Int(halves[0]), index >= 0, let bit = Int(halves[1]),
          (0...63).contains(bit)
        else {
          throw .invalidArgument(
            "fault bitflip needs K:B, a coordinate index K >= 0 and a bit B in 0...63, got \"\(value)\""
          )
        }
        bitFlips.append(BitFlip(coordinate: index, bit: bit))
      case "stale":
        guard let count = Int(value), (0...1000).contains(count) else {
          throw .invalidArgument("fault stale needs a count 0...1000, got \"\(value)\"")
        }
        staleness = count
      case "sample":
        guard let shift = Int(value), (0...1_000_000_000).contains(shift) else {
          throw .invalidArgument(
            "fault sample needs a row shift 0...1000000000 (1: read row r + 1 for row r), got \"\(value)\""
          )
        }
        sampleShift = shift
      case "after":
        guard let version = UInt64(value) else {
          throw .invalidArgument("fault after needs a version >= 0, got \"\(value)\"")
        }
        afterVersion = version
      case "rate":
        guard let fraction = Double(value), fraction > 0, fraction <= 1 else {
          throw .invalidArgument(
            "fault rate needs a fraction of pushes P, 0 < P <= 1, got \"\(value)\"")
        }
        rate = fraction
      default:
        throw .invalidArgument("unknown fault \"\(parts[0])\" (known: \(Self.forms))")
      }
    }
  }

  /// Whether this injects nothing (`after` and `rate` only choose the pushes).
  public var isNone: Bool {
    scale == 1 && flipped.isEmpty && bitFlips.isEmpty && staleness == 0 && sampleShift == 0
  }

  /// The largest coordinate a flip or bit flip names (nil when none does),
  /// to check against the model's parameter count.
  public var highestCoordinate: Int? {
    (flipped + bitFlips.map(\.coordinate)).max()
  }

  /// Keys the `rate` draw, so that it is independent of every other use of
  /// the worker id and sequence number (audit seeds, sampling, shuffles).
  static let rateKey: UInt64 = 0x6661_756C_7452_6174  // "faultRat"

  /// Whether the push `sequence` of worker `workerID`, computed at server
  /// version `version`, is struck: at or after `afterVersion`, and drawn
  /// with probability `rate` by a hash of the worker and the sequence only
  /// (the same push redone is struck again).
  public func strikes(workerID: UInt32, sequence: UInt64, version: UInt64) -> Bool {
    guard !isNone, version >= afterVersion else { return false }
    guard rate < 1 else { return true }
    var generator = SplitMix64(seed: Self.rateKey ^ (UInt64(workerID) << 32) ^ sequence)
    _ = generator.next()
    return generator.nextUnit() < rate
  }

  /// The rows read for `rows` of a dataset of `count` rows: shifted by `sampleShift`.
  public func rowsRead(for rows: [Int], datasetRows count: Int) -> [Int] {
    guard sampleShift != 0, count > 0 else { return rows }
    let shift = sampleShift % count
    return rows.map { ($0 + shift) % count }
  }

  /// Applies scale, flips and bit flips to `gradient`.
  public func corrupt(_ gradient: inout [Double]) {
    if scale != 1 { for index in gradient.indices { gradient[index] *= scale } }
    for index in flipped { gradient[index] = -gradient[index] }
    for flip in bitFlips {
      gradient[flip.coordinate] = Double(
        bitPattern: gradient[flip.coordinate].bitPattern ^ (UInt64(1) << UInt64(flip.bit)))
    }
  }

  public var description: String {
    var items: [String] = []
    if scale != 1 { items.append("scale=\(scale)") }
    items += flipped.map { "flip=\($0)" }
    items += bitFlips.map { "bitflip=\($0.coordinate):\($0.bit)" }
    if staleness != 0 { items.append("stale=\(staleness)") }
    if sampleShift != 0 { items.append("sample=\(sampleShift)") }
    if items.isEmpty { return "none" }
    if afterVersion != 0 { items.append("after=\(afterVersion)") }
    if rate != 1 { items.append("rate=\(rate)") }
    return items.joined(separator: ",")
  }
}
