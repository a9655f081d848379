/// The name and element count of one parameter tensor. A model's parameters are
/// a flat vector cut into named tensors in declaration order; the server stores
/// them by name and knows nothing else about the model.
public struct TensorSpec: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// Longest accepted tensor name, in bytes.
  public static let maximumNameLength = 64

  /// The tensor's name, e.g. `w`.
  public var name: String
  /// Number of Float64 elements.
  public var count: Int

  /// A tensor named `name` with `count` elements.
  public init(name: String, count: Int) {
    self.name = name
    self.count = count
  }

  /// Whether `name` is a usable tensor name: 1 to 64 characters from
  /// `A-Z a-z 0-9 . _ -`, so names print and parse safely everywhere.
  public static func isValidName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard !bytes.isEmpty, bytes.count <= maximumNameLength else { return false }
    return bytes.allSatisfy { byte in
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
        || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F || byte == 0x2D
    }
  }

  public var description: String { "\(name)[\(count)]" }
}

extension Array where Element == TensorSpec {
  /// Total number of elements across all tensors.
  public var totalCount: Int { reduce(0) { $0 + $1.count } }

  /// The part of this layout inside the flat element range `range`: each tensor
  /// that overlaps it, keeping its name, with the overlapping element count.
  /// A server shard stores and exchanges exactly this slice.
  public func slice(_ range: Range<Int>) -> [TensorSpec] {
    var result: [TensorSpec] = []
    var offset = 0
    for spec in self {
      let lower = Swift.max(offset, range.lowerBound)
      let upper = Swift.min(offset + spec.count, range.upperBound)
      if lower < upper { result.append(TensorSpec(name: spec.name, count: upper - lower)) }
      offset += spec.count
    }
    return result
  }
}
