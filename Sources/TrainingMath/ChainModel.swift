/// The tutorial's network generalised to depth L: `e = wL·…·w2·w1·x`, one scalar
/// weight per layer and no activation function. Its weights are one tensor `w`.
public struct ChainModel: DifferentiableModel, Equatable {
  /// The tutorial's initial weights (w1, w2, w3).
  public static let seedWeights: [Double] = [0.2333, -0.233, -0.52133]
  /// The model name used on the wire and in audits.
  public static let name = "chain"

  /// Number of layers L (at least 1).
  public let layers: Int
  /// How the weights are stored and exchanged (computation is in Float64).
  public let elementType: ElementType

  /// A chain of `layers` layers.
  public init(layers: Int, elementType: ElementType = .float64) {
    precondition(layers >= 1, "a chain needs at least one layer")
    self.layers = layers
    self.elementType = elementType
  }

  public var name: String { Self.name }
  public var layout: [TensorSpec] {
    [TensorSpec(name: "w", count: layers, elementType: elementType)]
  }
  public var parameterCount: Int { layers }
  public var activationCount: Int { layers + 1 }

  /// Initial weights: the tutorial's for L = 3. For other depths every weight is 1
  /// except the last, -0.5, so the product starts at -0.5, away from the saddle at 0.
  public func initialWeights() -> [Double] {
    var weights: [Double]
    if layers == 3 {
      weights = Self.seedWeights
    } else {
      weights = [Double](repeating: 1, count: layers)
      weights[layers - 1] = -0.5
    }
    layout.roundToElementTypes(&weights)
    return weights
  }

  /// activations[0] = x, activations[k] = w_k · activations[k-1]; returns activations[L].
  public func forward(weights: [Double], input: Double, activations: inout [Double]) -> Double {
    activations[0] = input
    var value = input
    for k in 0..<layers {
      value = weights[k] * value
      activations[k + 1] = value
    }
    return value
  }

  /// Cached backward pass, O(L): r_L = dL/de; dL/dw_k = r_k · a_{k-1};
  /// r_{k-1} = r_k · w_k, from the last layer to the first.
  public func backward(
    weights: [Double], activations: [Double], outputGradient: Double, gradient: inout [Double]
  ) {
    var factor = outputGradient
    for k in stride(from: layers - 1, through: 0, by: -1) {
      gradient[k] += factor * activations[k]
      factor = factor * weights[k]
    }
  }

  /// The naive chain rule, O(L²): each layer recomputes the product of the
  /// weights above it. It multiplies in the same order as `backward`, so both
  /// give bit-identical gradients; kept for tests and benchmarks.
  public func naiveBackward(
    weights: [Double], activations: [Double], outputGradient: Double, gradient: inout [Double]
  ) {
    for k in 0..<layers {
      var factor = outputGradient
      for j in stride(from: layers - 1, to: k, by: -1) {
        factor = factor * weights[j]
      }
      gradient[k] += factor * activations[k]
    }
  }

  /// L chained multiplications: |error| ≤ γ(L)·|e|.
  public func predictionErrorBound(prediction: Double) -> Double {
    Rounding.gamma(layers) * abs(prediction)
  }
}
