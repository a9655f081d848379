import WireProtocol

/// Which of a worker's push sequence numbers have been applied: the highest,
/// and a bitmap of the 256 below it. A worker that keeps several pushes in flight
/// may have one overtaken by the next (a reconnect loses the first, the retry
/// arrives after the second); the window still applies each exactly once. Its
/// width bounds a worker's pipeline.
public struct SequenceWindow: Equatable, Sendable {
  /// How far below the highest applied sequence the window remembers.
  public static let width = UInt64(AppliedBitmap.width)

  /// The highest sequence applied (0: none yet).
  public private(set) var highest: UInt64
  /// Bit i set: sequence `highest - 1 - i` was applied.
  public private(set) var below: AppliedBitmap

  /// What a push with some sequence number is.
  public enum Verdict: Equatable, Sendable {
    /// Not applied yet: apply it.
    case new
    /// Applied already: answer again, apply nothing.
    case applied
    /// Too far below the window to tell: refuse it.
    case tooOld
  }

  /// A window; `highest` and `below` as saved in a checkpoint.
  public init(highest: UInt64 = 0, below: AppliedBitmap = AppliedBitmap()) {
    self.highest = highest
    self.below = below
  }

  /// Classifies `sequence` (>= 1).
  public func verdict(for sequence: UInt64) -> Verdict {
    if sequence > highest { return .new }
    if sequence == highest { return .applied }
    let distance = highest - sequence
    guard distance <= Self.width else { return .tooOld }
    return below[Int(distance - 1)] ? .applied : .new
  }

  /// The bitmap, relative to `highest`, of the sequences below it that every one
  /// of `windows` has applied (several server shards answering one join).
  public static func appliedOnEvery(_ windows: [SequenceWindow], below highest: UInt64)
    -> AppliedBitmap
  {
    var bits = AppliedBitmap()
    for offset in 0..<min(width, highest > 0 ? highest - 1 : 0) {
      let sequence = highest - 1 - offset
      if windows.allSatisfy({ $0.verdict(for: sequence) == .applied }) { bits.set(Int(offset)) }
    }
    return bits
  }

  /// Records `sequence` as applied.
  public mutating func markApplied(_ sequence: UInt64) {
    if sequence > highest {
      let shift = sequence - highest
      // The old highest becomes bit (shift - 1); older bits move up by `shift`.
      below = below.shiftedUp(by: Int(min(shift, Self.width)))
      if highest > 0 && shift <= Self.width { below.set(Int(shift - 1)) }
      highest = sequence
    } else if sequence < highest, highest - sequence <= Self.width {
      below.set(Int(highest - sequence - 1))
    }
  }
}
