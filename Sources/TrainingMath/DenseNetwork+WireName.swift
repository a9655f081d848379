/// The way back from a dense network's wire name and layout to the network,
/// for servers and audit records that only see those.
extension DenseNetwork {
  /// Whether `name` is a dense network's wire name (`linear`, `softmax`,
  /// `mlp.<activation>`, `mlp.<activation>.squared`).
  public static func isWireName(_ name: String) -> Bool {
    (try? parse(name: name)) != nil
  }

  /// The network called `name` with parameters laid out as `layout`: the
  /// tensors must be `layer<l>.weight` [in, out] and `layer<l>.bias` [out] for
  /// l = 1...L, chained (each layer's in is the previous out), of one element type.
  public init(named name: String, layout: [TensorSpec]) throws(TrainingMathError) {
    let (hidden, activation, loss) = try Self.parse(name: name)
    guard !layout.isEmpty, layout.count % 2 == 0 else {
      throw .invalidModel("model \(name) needs weight and bias tensors per layer, got \(layout)")
    }
    let layers = layout.count / 2
    guard hidden == (layers > 1) else {
      throw .invalidModel("model \(name) cannot have \(layers) layers")
    }
    var widths: [Int] = []
    for layer in 1...layers {
      let weight = layout[2 * layer - 2]
      let bias = layout[2 * layer - 1]
      guard weight.name == "layer\(layer).weight", weight.rank == 2,
        bias.name == "layer\(layer).bias", bias.rank == 1, bias.count == weight.shape[1],
        widths.last.map({ $0 == weight.shape[0] }) ?? true,
        weight.elementType == layout[0].elementType, bias.elementType == layout[0].elementType
      else {
        throw .invalidModel("model \(name): layer \(layer) does not chain in \(layout)")
      }
      if layer == 1 { widths.append(weight.shape[0]) }
      widths.append(weight.shape[1])
    }
    self.init(
      inputCount: widths[0], hiddenSizes: Array(widths[1..<layers]), outputCount: widths[layers],
      activation: activation, loss: loss, elementType: layout[0].elementType)
  }

  /// Whether the name has hidden layers, and its activation and loss.
  private static func parse(name: String) throws(TrainingMathError) -> (
    hidden: Bool, activation: Activation, loss: LossKind
  ) {
    switch name {
    case "linear": return (false, .relu, .squared)
    case "softmax": return (false, .relu, .crossEntropy)
    default:
      let parts = name.split(separator: ".", omittingEmptySubsequences: false)
      guard parts.count == 2 || (parts.count == 3 && parts[2] == "squared"), parts[0] == "mlp",
        let activation = Activation(rawValue: String(parts[1]))
      else { throw .invalidModel("\"\(name)\" is not a dense model's name") }
      return (true, activation, parts.count == 3 ? .squared : .crossEntropy)
    }
  }
}
