/// The tutorial's network generalised to depth L: `e = wL·…·w2·w1·x`, one scalar
/// weight per layer and no activation function, trained with squared error on
/// one feature. Its weights are one tensor `w`. A batch is computed example by
/// example in order, so every figure of the tutorial comes out bit for bit.
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
  /// Cached activations per example: x and the L partial products.
  public var activationCount: Int { layers + 1 }
  public var inputCount: Int { 1 }
  public var outputCount: Int { 1 }
  public var loss: any Loss { SquaredErrorLoss() }

  /// A zeroed activation cache for one example.
  public func makeActivations() -> [Double] { [Double](repeating: 0, count: activationCount) }

  /// The chain's cache: every example's activations, `batchCapacity × (L + 1)`.
  public func makeWorkspace(batchCapacity: Int) -> BatchWorkspace {
    BatchWorkspace(
      batchCapacity: batchCapacity, inputCount: 1, outputCount: 1,
      cache: [[Double](repeating: 0, count: batchCapacity * activationCount)])
  }

  /// The chain's weights do not depend on a seed: `initialWeights()`.
  public func initialWeights(seed: UInt64) -> [Double] { initialWeights() }

  public func forward(weights: [Double], workspace: BatchWorkspace) {
    let width = activationCount
    for example in 0..<workspace.batchSize {
      let input = workspace.inputs[example]
      var value = input
      workspace.cache[0][example * width] = input
      for k in 0..<layers {
        value = weights[k] * value
        workspace.cache[0][example * width + k + 1] = value
      }
      workspace.outputs[example] = value
    }
  }

  /// Example after example, the cached backward pass accumulates into the
  /// gradient, which is then divided by the batch size (as the tutorial does).
  public func backward(weights: [Double], workspace: BatchWorkspace, gradient: inout [Double]) {
    for index in gradient.indices { gradient[index] = 0 }
    let width = activationCount
    for example in 0..<workspace.batchSize {
      var factor = workspace.outputGradient[example]
      for k in stride(from: layers - 1, through: 0, by: -1) {
        gradient[k] += factor * workspace.cache[0][example * width + k]
        factor = factor * weights[k]
      }
    }
    if workspace.batchSize > 1 {
      let count = Double(workspace.batchSize)
      for index in gradient.indices { gradient[index] /= count }
    }
  }

  /// L chained multiplications per output: |error| ≤ γ(L)·|e|.
  public func outputErrorBounds(weights: [Double], workspace: BatchWorkspace) {
    for example in 0..<workspace.batchSize {
      workspace.outputBounds[example] = predictionErrorBound(prediction: workspace.outputs[example])
    }
  }

  /// Per example, the Jacobian ∂e/∂w from a backward pass with output
  /// gradient 1; the residual's rounding error δr enters every coordinate as
  /// δr·|∂e/∂w_i|, and the backward pass's own rounding as γ(2L + 4)·|r·∂e/∂w_i|.
  public func gradientErrorBounds(weights: [Double], workspace: BatchWorkspace) -> GradientBounds {
    var rounding = [Double](repeating: 0, count: layers)
    var magnitude = [Double](repeating: 0, count: layers)
    let examples = workspace.batchSize
    guard examples > 0 else { return GradientBounds(rounding: rounding, magnitude: magnitude) }
    let width = activationCount
    let depthGamma = Rounding.gamma(2 * activationCount + 2)
    var jacobian = [Double](repeating: 0, count: layers)
    for example in 0..<examples {
      let residual = abs(workspace.outputGradient[example])
      let residualBound = workspace.outputGradientBounds[example]
      var factor = 1.0
      for k in stride(from: layers - 1, through: 0, by: -1) {
        jacobian[k] = factor * workspace.cache[0][example * width + k]
        factor = factor * weights[k]
      }
      for index in 0..<layers {
        let slope = abs(jacobian[index]) * (1 + depthGamma)
        rounding[index] += residualBound * slope + depthGamma * residual * slope
        magnitude[index] += (residual + residualBound) * slope
      }
    }
    let n = Double(examples)
    let summation = Rounding.gamma(examples + 1)
    for index in 0..<layers {
      rounding[index] = rounding[index] / n + summation * magnitude[index] / n
      magnitude[index] /= n
    }
    return GradientBounds(rounding: rounding, magnitude: magnitude)
  }

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

  /// One example: activations[0] = x, activations[k] = w_k · activations[k-1];
  /// returns activations[L].
  public func forward(weights: [Double], input: Double, activations: inout [Double]) -> Double {
    activations[0] = input
    var value = input
    for k in 0..<layers {
      value = weights[k] * value
      activations[k + 1] = value
    }
    return value
  }

  /// One example's cached backward pass, O(L): r_L = dL/de; dL/dw_k = r_k · a_{k-1};
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

  /// The prediction at `weights` for one input, without keeping the activations.
  public func predict(weights: [Double], input: Double) -> Double {
    var activations = makeActivations()
    return forward(weights: weights, input: input, activations: &activations)
  }

  /// L chained multiplications: |error| ≤ γ(L)·|e|.
  public func predictionErrorBound(prediction: Double) -> Double {
    Rounding.gamma(layers) * abs(prediction)
  }
}
