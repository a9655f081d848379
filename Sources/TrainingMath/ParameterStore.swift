/// Parameters held in their element types: the values of the Float64 tensors
/// in one array of Double, those of the Float32 tensors in one array of Float,
/// so that a Float32 tensor costs 4 bytes an element, as on the wire. Updates
/// are computed in Float64 and rounded once into a Float32 tensor.
public struct ParameterStore: Equatable, Sendable {
  /// The tensors, in order.
  public let layout: [TensorSpec]
  /// The Float64 tensors' values, tensor after tensor.
  private var float64: [Double]
  /// The Float32 tensors' values, tensor after tensor.
  private var float32: [Float]

  /// A store of `values` laid out by `layout` (a Float32 tensor's values are
  /// rounded to Float).
  public init(layout: [TensorSpec], values: [Double]) {
    precondition(layout.totalCount == values.count, "layout and values differ in size")
    self.layout = layout
    guard layout.hasFloat32 else {
      float64 = values  // moved, not copied: one copy of a big model
      float32 = []
      return
    }
    float64 = []
    float32 = []
    var offset = 0
    for spec in layout {
      let part = values[offset..<(offset + spec.count)]
      switch spec.elementType {
      case .float64: float64.append(contentsOf: part)
      case .float32: float32.append(contentsOf: part.lazy.map { Float($0) })
      }
      offset += spec.count
    }
  }

  /// Number of parameters.
  public var count: Int { float64.count + float32.count }

  /// Bytes the values take.
  public var byteCount: Int { float64.count * 8 + float32.count * 4 }

  /// All values as Float64, in layout order. Without Float32 tensors this is
  /// the storage itself, shared, not a copy.
  public var values: [Double] {
    guard !float32.isEmpty else { return float64 }
    var values: [Double] = []
    values.reserveCapacity(count)
    forEachTensor(
      float64: { _, part in values.append(contentsOf: part) },
      float32: { _, part in values.append(contentsOf: part.lazy.map { Double($0) }) })
    return values
  }

  /// Applies one update of `optimizer` with `gradient`, in layout order.
  public mutating func apply(_ optimizer: inout Optimizer, gradient: [Double]) {
    guard !float32.isEmpty else {
      optimizer.apply(gradient: gradient, to: &float64)
      return
    }
    precondition(gradient.count == count, "gradient and parameters differ in size")
    gradient.withUnsafeBufferPointer { gradient in
      apply(&optimizer) { part in part(0, gradient) }
    }
  }

  /// Applies one update of `optimizer` with a gradient read where it was
  /// received, in layout order, without copying it first.
  public mutating func apply(_ optimizer: inout Optimizer, gradient: BorrowedValues) {
    apply(&optimizer) { part in gradient.forEachPart(part) }
  }

  /// Applies one update of `optimizer` whose gradient comes in parts, as
  /// `Optimizer.apply(to:gradientParts:)` describes.
  mutating func apply(
    _ optimizer: inout Optimizer,
    gradientParts parts: ((_ offset: Int, _ values: UnsafeBufferPointer<Double>) -> Void) -> Void
  ) {
    guard !float32.isEmpty else {
      optimizer.apply(to: &float64, gradientParts: parts)
      return
    }
    let layout = self.layout
    var covered = 0
    float64.withUnsafeMutableBufferPointer { doubles in
      float32.withUnsafeMutableBufferPointer { floats in
        optimizer.update { runs in
          parts { offset, gradient in
            covered += gradient.count
            // Each tensor the part overlaps, in the storage of its type.
            var (flat, at64, at32) = (0, 0, 0)
            for spec in layout {
              let lower = max(flat, offset)
              let upper = min(flat + spec.count, offset + gradient.count)
              if lower < upper {
                let g = UnsafeBufferPointer(rebasing: gradient[(lower - offset)..<(upper - offset)])
                let start = lower - flat
                switch spec.elementType {
                case .float64:
                  runs.apply(
                    at: lower, g,
                    to: UnsafeMutableBufferPointer(rebasing: doubles[(at64 + start)...]))
                case .float32:
                  runs.apply(
                    at: lower, g,
                    to: UnsafeMutableBufferPointer(rebasing: floats[(at32 + start)...]))
                }
              }
              flat += spec.count
              if spec.elementType == .float64 { at64 += spec.count } else { at32 += spec.count }
            }
          }
        }
      }
    }
    precondition(covered == count, "gradient parts do not cover the parameters")
  }

  /// Hands each tensor's values, with its flat offset, to the closure for its type.
  private func forEachTensor(
    float64 onFloat64: (Int, ArraySlice<Double>) -> Void,
    float32 onFloat32: (Int, ArraySlice<Float>) -> Void
  ) {
    var (flat, at64, at32) = (0, 0, 0)
    for spec in layout {
      switch spec.elementType {
      case .float64:
        onFloat64(flat, float64[at64..<(at64 + spec.count)])
        at64 += spec.count
      case .float32:
        onFloat32(flat, float32[at32..<(at32 + spec.count)])
        at32 += spec.count
      }
      flat += spec.count
    }
  }
}
