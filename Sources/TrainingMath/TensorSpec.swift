/// How a tensor's elements are stored on the wire and rounded on the server.
public enum ElementType: UInt8, Equatable, Hashable, Sendable, CaseIterable {
  /// IEEE 754 binary64.
  case float64 = 1
  /// IEEE 754 binary32: values are kept exactly representable as Float.
  case float32 = 2

  /// Bytes per element on the wire.
  public var byteCount: Int { self == .float64 ? 8 : 4 }

  /// The unit roundoff of the type.
  public var unitRoundoff: Double {
    self == .float64 ? Double.ulpOfOne / 2 : Double(Float.ulpOfOne) / 2
  }
}

/// The name, shape and element type of one parameter tensor. A model's parameters are
/// a flat vector cut into named tensors in declaration order; the server stores
/// them by name and knows nothing else about the model.
public struct TensorSpec: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// Longest accepted tensor name, in bytes.
  public static let maximumNameLength = 64

  /// The tensor's name, e.g. `w`.
  public var name: String
  /// Number of elements: the product of the shape.
  public private(set) var count: Int
  /// Number of dimensions, 1 to `maximumRank`.
  public private(set) var rank: Int
  /// The dimensions in the first `rank` lanes, the rest 1: kept inline so a
  /// decoded layout allocates nothing for its shapes.
  public private(set) var dimensions: SIMD4<Int>
  /// How the elements are stored.
  public var elementType: ElementType

  /// Most dimensions a tensor may have.
  public static let maximumRank = 4

  /// A vector named `name` with `count` elements of `elementType`.
  public init(name: String, count: Int, elementType: ElementType = .float64) {
    self.name = name
    self.count = count
    self.rank = 1
    self.dimensions = SIMD4(count, 1, 1, 1)
    self.elementType = elementType
  }

  /// A tensor named `name` of shape `shape` (1 to 4 dimensions, each >= 1),
  /// outermost first: `[64, 128]` is a 64×128 matrix stored row-major.
  public init(name: String, shape: [Int], elementType: ElementType = .float64) {
    precondition(!shape.isEmpty && shape.count <= Self.maximumRank, "rank must be 1...4")
    self.name = name
    self.count = shape.reduce(1, *)
    self.rank = shape.count
    var dimensions = SIMD4<Int>(1, 1, 1, 1)
    for (axis, size) in shape.enumerated() { dimensions[axis] = size }
    self.dimensions = dimensions
    self.elementType = elementType
  }

  /// A tensor of `rank` dimensions given in the first lanes of `dimensions`
  /// (the others 1), e.g. as decoded: allocates nothing.
  public init(name: String, rank: Int, dimensions: SIMD4<Int>, elementType: ElementType) {
    precondition((1...Self.maximumRank).contains(rank), "rank must be 1...4")
    self.name = name
    self.rank = rank
    var padded = dimensions
    for axis in rank..<Self.maximumRank { padded[axis] = 1 }
    self.dimensions = padded
    self.count = padded[0] * padded[1] * padded[2] * padded[3]
    self.elementType = elementType
  }

  /// The dimensions, outermost first (`[count]` for a vector).
  public var shape: [Int] { (0..<rank).map { dimensions[$0] } }

  /// Whether `name` is a usable tensor name: 1 to 64 characters from
  /// `A-Z a-z 0-9 . _ -`, so names print and parse safely everywhere.
  public static func isValidName(_ name: String) -> Bool {
    let bytes = name.utf8
    guard !bytes.isEmpty, bytes.count <= maximumNameLength else { return false }
    return bytes.allSatisfy { byte in
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A)
        || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F || byte == 0x2D
    }
  }

  public var description: String {
    let dimensions = shape.map(String.init).joined(separator: ",")
    return elementType == .float64 ? "\(name)[\(dimensions)]" : "\(name)[\(dimensions)]:float32"
  }
}

extension Array where Element == TensorSpec {
  /// Total number of elements across all tensors.
  public var totalCount: Int { reduce(0) { $0 + $1.count } }

  /// Rounds the elements of every Float32 tensor in `values` (laid out by this
  /// layout) to Float precision, so they are exactly what travels on the wire.
  public func roundToElementTypes(_ values: inout [Double]) {
    var offset = 0
    for spec in self {
      if spec.elementType == .float32 {
        for index in offset..<(offset + spec.count) { values[index] = Double(Float(values[index])) }
      }
      offset += spec.count
    }
  }

  /// Whether `other` stores the same values: the same names, element counts
  /// and types in the same order, whatever the shapes (a tensor split across
  /// server shards comes back as a vector).
  public func hasSameStorage(as other: [TensorSpec]) -> Bool {
    count == other.count
      && zip(self, other).allSatisfy {
        $0.name == $1.name && $0.count == $1.count && $0.elementType == $1.elementType
      }
  }

  /// Whether some tensor is Float32 (its values are rounded to it on the server
  /// and on the wire).
  public var hasFloat32: Bool { contains { $0.elementType == .float32 } }

  /// The part of this layout inside the flat element range `range`: each tensor
  /// that overlaps it, keeping its name, with the overlapping element count.
  /// A server shard stores and exchanges exactly this slice.
  public func slice(_ range: Range<Int>) -> [TensorSpec] {
    var result: [TensorSpec] = []
    var offset = 0
    for spec in self {
      let lower = Swift.max(offset, range.lowerBound)
      let upper = Swift.min(offset + spec.count, range.upperBound)
      if lower < upper {
        // A whole tensor keeps its shape; a part of one is a vector.
        result.append(
          lower == offset && upper == offset + spec.count
            ? spec
            : TensorSpec(name: spec.name, count: upper - lower, elementType: spec.elementType))
      }
      offset += spec.count
    }
    return result
  }
}
