/// A loss value together with a bound on its absolute rounding error.
public struct BoundedValue: Equatable, Sendable {
  /// The computed value.
  public var value: Double
  /// |computed − exact| is at most this.
  public var bound: Double

  /// A value with its rounding bound.
  public init(value: Double, bound: Double) {
    self.value = value
    self.bound = bound
  }
}

/// Which backward pass computes a gradient.
public enum BackwardAlgorithm: Sendable {
  /// Backpropagation: chain-rule factors computed once, last layer to first, O(L).
  case cached
  /// The naive chain rule, recomputing the product above each layer, O(L²).
  case naive
}

/// The training objective of a model: the mean squared-error loss over a batch
/// of samples, its gradient by backpropagation, and rounding bounds for audits.
public struct Objective<Model: DifferentiableModel>: Sendable {
  /// The model whose loss this is.
  public let model: Model

  /// The objective of `model`.
  public init(model: Model) { self.model = model }

  /// Mean loss over `samples` at `weights` (0 for an empty batch).
  public func loss(weights: [Double], samples: [Sample]) -> Double {
    guard !samples.isEmpty else { return 0 }
    var activations = model.makeActivations()
    var total = 0.0
    for sample in samples {
      let prediction = model.forward(weights: weights, input: sample.x, activations: &activations)
      total += SquaredErrorLoss.value(prediction: prediction, label: sample.label)
    }
    return total / Double(samples.count)
  }

  /// Writes the gradient of the mean loss over `samples` into `gradient` and
  /// returns the mean loss. Forward caches activations; backward reuses them.
  @discardableResult
  public func gradient(
    weights: [Double], samples: [Sample], into gradient: inout [Double],
    algorithm: BackwardAlgorithm = .cached
  ) -> Double {
    var activations = model.makeActivations()
    return self.gradient(
      weights: weights, samples: samples, into: &gradient, activations: &activations,
      algorithm: algorithm)
  }

  /// The same, with the caller's buffer for the activations (of
  /// `model.activationCount` elements), so a loop over batches allocates nothing.
  @discardableResult
  public func gradient(
    weights: [Double], samples: [Sample], into gradient: inout [Double],
    activations: inout [Double], algorithm: BackwardAlgorithm = .cached
  ) -> Double {
    for index in gradient.indices { gradient[index] = 0 }
    guard !samples.isEmpty else { return 0 }
    var total = 0.0
    for sample in samples {
      let prediction = model.forward(weights: weights, input: sample.x, activations: &activations)
      total += SquaredErrorLoss.value(prediction: prediction, label: sample.label)
      let outputGradient = SquaredErrorLoss.derivative(prediction: prediction, label: sample.label)
      switch algorithm {
      case .cached:
        model.backward(
          weights: weights, activations: activations, outputGradient: outputGradient,
          gradient: &gradient)
      case .naive:
        guard let chain = model as? ChainModel else {
          preconditionFailure("the naive chain rule is defined for ChainModel only")
        }
        chain.naiveBackward(
          weights: weights, activations: activations, outputGradient: outputGradient,
          gradient: &gradient)
      }
    }
    if samples.count > 1 {
      let count = Double(samples.count)
      for index in gradient.indices { gradient[index] /= count }
    }
    return total / Double(samples.count)
  }

  /// The gradient as a new array.
  public func gradient(weights: [Double], samples: [Sample]) -> [Double] {
    var result = [Double](repeating: 0, count: model.parameterCount)
    gradient(weights: weights, samples: samples, into: &result)
    return result
  }

  /// The mean loss with a bound on its rounding error.
  public func boundedLoss(weights: [Double], samples: [Sample]) -> BoundedValue {
    guard !samples.isEmpty else { return BoundedValue(value: 0, bound: 0) }
    var activations = model.makeActivations()
    var total = 0.0
    var bound = 0.0
    for sample in samples {
      let prediction = model.forward(weights: weights, input: sample.x, activations: &activations)
      let value = SquaredErrorLoss.value(prediction: prediction, label: sample.label)
      total += value
      bound += SquaredErrorLoss.valueErrorBound(
        prediction: prediction, label: sample.label,
        predictionBound: model.predictionErrorBound(prediction: prediction))
    }
    let count = Double(samples.count)
    let mean = total / count
    // Summation error γ(n)·Σ|v| and the division's own rounding.
    let summation = Rounding.gamma(samples.count) * total
    return BoundedValue(value: mean, bound: (bound + summation) / count + Rounding.unit * mean)
  }

  /// Per coordinate, a bound on the rounding error of the backpropagated mean
  /// gradient, and a bound on |∂loss/∂w_i| itself (for finite-difference step errors).
  /// The residual's rounding error δr enters every coordinate as δr·|∂e/∂w_i|.
  public func gradientBounds(weights: [Double], samples: [Sample]) -> (
    rounding: [Double], magnitude: [Double]
  ) {
    let count = model.parameterCount
    var rounding = [Double](repeating: 0, count: count)
    var magnitude = [Double](repeating: 0, count: count)
    guard !samples.isEmpty else { return (rounding, magnitude) }
    var activations = model.makeActivations()
    var jacobian = [Double](repeating: 0, count: count)
    let depthGamma = Rounding.gamma(2 * model.activationCount + 2)
    for sample in samples {
      let prediction = model.forward(weights: weights, input: sample.x, activations: &activations)
      let residual = abs(SquaredErrorLoss.derivative(prediction: prediction, label: sample.label))
      let residualBound = SquaredErrorLoss.residualErrorBound(
        prediction: prediction, label: sample.label,
        predictionBound: model.predictionErrorBound(prediction: prediction))
      for index in jacobian.indices { jacobian[index] = 0 }
      model.backward(
        weights: weights, activations: activations, outputGradient: 1, gradient: &jacobian)
      for index in 0..<count {
        let slope = abs(jacobian[index]) * (1 + depthGamma)
        rounding[index] += residualBound * slope + depthGamma * residual * slope
        magnitude[index] += (residual + residualBound) * slope
      }
    }
    let n = Double(samples.count)
    let summation = Rounding.gamma(samples.count + 1)
    for index in 0..<count {
      rounding[index] = rounding[index] / n + summation * magnitude[index] / n
      magnitude[index] /= n
    }
    return (rounding, magnitude)
  }
}
