/// A fully connected network: L dense layers with biases, an activation after
/// every layer but the last, trained with squared error or softmax
/// cross-entropy. With no hidden layers it is linear regression (`linear`) or
/// multinomial logistic regression (`softmax`).
///
/// Parameters, layer after layer l = 1...L: `layer<l>.weight` of shape
/// [in, out] (row-major: the weights into output unit j are column j) and
/// `layer<l>.bias` of shape [out]. A mini-batch runs as one matrix product per
/// layer and pass through `BLAS` (see `DenseNetwork+Passes.swift`); float32
/// models compute in Float.
public struct DenseNetwork: DifferentiableModel, Equatable {
  /// Units per layer: the inputs, each hidden layer, the outputs.
  public let widths: [Int]
  /// The nonlinearity after each hidden layer.
  public let activation: Activation
  /// The loss the network is trained with.
  public let lossKind: LossKind
  /// The element type of every tensor, and the precision the passes compute in.
  public let elementType: ElementType

  /// A network from `inputCount` features through `hiddenSizes` hidden layers
  /// (none for a linear model, whose `activation` is then ignored and stored as
  /// relu) to `outputCount` outputs. Every size must be at least 1.
  public init(
    inputCount: Int, hiddenSizes: [Int], outputCount: Int, activation: Activation,
    loss: LossKind, elementType: ElementType = .float64
  ) {
    let widths = [inputCount] + hiddenSizes + [outputCount]
    precondition(widths.allSatisfy { $0 >= 1 }, "layer sizes must be at least 1: \(widths)")
    self.widths = widths
    // Without hidden layers there is no activation: one value keeps equal models equal.
    self.activation = hiddenSizes.isEmpty ? .relu : activation
    self.lossKind = loss
    self.elementType = elementType
    layout = (1..<widths.count).flatMap { layer in
      [
        TensorSpec(
          name: "layer\(layer).weight", shape: [widths[layer - 1], widths[layer]],
          elementType: elementType),
        TensorSpec(name: "layer\(layer).bias", shape: [widths[layer]], elementType: elementType),
      ]
    }
    parameterCount = layout.totalCount
  }

  /// `linear`, `softmax`, `mlp.<activation>` or `mlp.<activation>.squared`.
  public var name: String {
    switch (hiddenSizes.isEmpty, lossKind) {
    case (true, .squared): "linear"
    case (true, .crossEntropy): "softmax"
    case (false, .crossEntropy): "mlp.\(activation.rawValue)"
    case (false, .squared): "mlp.\(activation.rawValue).squared"
    }
  }

  public let layout: [TensorSpec]
  public let parameterCount: Int
  public var inputCount: Int { widths[0] }
  public var outputCount: Int { widths[widths.count - 1] }
  /// The hidden layers' sizes.
  public var hiddenSizes: [Int] { Array(widths[1..<(widths.count - 1)]) }
  /// Number of dense layers (hidden layers + 1).
  public var layerCount: Int { widths.count - 1 }
  public var loss: any Loss { lossKind.loss }

  /// Initial weights from `SplitMix64(seed:)`, layer after layer: He normal
  /// (standard deviation √(2/fan_in)) for relu networks with hidden layers,
  /// Glorot uniform (±√(6/(fan_in + fan_out))) otherwise (linear and softmax
  /// included); biases 0; float32 tensors rounded to Float.
  public func initialWeights(seed: UInt64) -> [Double] {
    var generator = SplitMix64(seed: seed)
    var weights = [Double](repeating: 0, count: parameterCount)
    let he = activation == .relu && layerCount > 1
    var offset = 0
    for layer in 0..<layerCount {
      let (fanIn, fanOut) = (widths[layer], widths[layer + 1])
      for index in offset..<(offset + fanIn * fanOut) {
        if he {
          weights[index] = (2 / Double(fanIn)).squareRoot() * generator.nextGaussian()
        } else {
          let limit = (6 / Double(fanIn + fanOut)).squareRoot()
          weights[index] = limit * (2 * generator.nextUnit() - 1)
        }
      }
      offset += fanIn * fanOut + fanOut
    }
    layout.roundToElementTypes(&weights)
    return weights
  }

  public func makeWorkspace(batchCapacity: Int) -> BatchWorkspace {
    let buffers = DenseBuffers(network: self, batchCapacity: batchCapacity)
    return BatchWorkspace(
      batchCapacity: batchCapacity, inputCount: inputCount, outputCount: outputCount,
      cache: [[Double](repeating: 0, count: buffers.doubleCount)],
      floatCache: [[Float](repeating: 0, count: buffers.floatCount)])
  }
}
