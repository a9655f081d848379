/// A flat Float64 vector cut into named tensors: how parameters and gradients
/// travel and how the server stores them without knowing the model.
public struct NamedTensors: Equatable, Sendable {
  /// The tensors' names and sizes, in order.
  public var layout: [TensorSpec]
  /// All elements, tensor after tensor.
  public var values: [Double]

  /// Tensors with `layout` holding `values`; the counts must add up.
  public init(layout: [TensorSpec], values: [Double]) {
    precondition(layout.totalCount == values.count, "layout and values differ in size")
    self.layout = layout
    self.values = values
  }

  /// No tensors (a placeholder that allocates nothing).
  public static let empty = NamedTensors(layout: [], values: [])

  /// The elements of the tensor called `name`, or nil.
  public func tensor(named name: String) -> ArraySlice<Double>? {
    var offset = 0
    for spec in layout {
      if spec.name == name { return values[offset..<(offset + spec.count)] }
      offset += spec.count
    }
    return nil
  }
}
