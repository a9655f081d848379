import TrainingMath

/// A deliberate gradient fault, for testing that audits catch bad workers.
///
/// Written as comma-separated `key=value` items:
/// - `scale=F`: multiply the whole gradient by F;
/// - `flip=K`: negate coordinate K (0-based; may repeat);
/// - `stale=K`: compute at the weights received K replies earlier while still
///   claiming the newest version, as a worker with a stale cache would.
public struct GradientFault: Equatable, Sendable, CustomStringConvertible {
  /// Factor applied to every coordinate.
  public var scale: Double = 1
  /// Coordinates negated.
  public var flipped: [Int] = []
  /// Replies of staleness.
  public var staleness: Int = 0

  /// No fault.
  public static let none = GradientFault()

  /// No fault.
  public init() {}

  /// Parses a fault specification such as `scale=1.000001` or `flip=1,stale=2`.
  public init(parsing text: String) throws(RoleError) {
    for item in text.split(separator: ",") {
      let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2 else {
        throw .invalidArgument("fault \"\(item)\" is not key=value (scale=F, flip=K, stale=K)")
      }
      switch parts[0] {
      case "scale":
        guard let factor = Double(parts[1]), factor.isFinite else {
          throw .invalidArgument("fault scale needs a finite number, got \"\(parts[1])\"")
        }
        scale = factor
      case "flip":
        guard let index = Int(parts[1]), index >= 0 else {
          throw .invalidArgument("fault flip needs a coordinate index >= 0, got \"\(parts[1])\"")
        }
        flipped.append(index)
      case "stale":
        guard let count = Int(parts[1]), (0...1000).contains(count) else {
          throw .invalidArgument("fault stale needs a count 0...1000, got \"\(parts[1])\"")
        }
        staleness = count
      default:
        throw .invalidArgument("unknown fault \"\(parts[0])\" (known: scale, flip, stale)")
      }
    }
  }

  /// Whether this injects nothing.
  public var isNone: Bool { scale == 1 && flipped.isEmpty && staleness == 0 }

  /// Applies scale and flips to `gradient`.
  public func corrupt(_ gradient: inout [Double]) {
    if scale != 1 { for index in gradient.indices { gradient[index] *= scale } }
    for index in flipped { gradient[index] = -gradient[index] }
  }

  public var description: String {
    var items: [String] = []
    if scale != 1 { items.append("scale=\(scale)") }
    items += flipped.map { "flip=\($0)" }
    if staleness != 0 { items.append("stale=\(staleness)") }
    return items.isEmpty ? "none" : items.joined(separator: ",")
  }
}
