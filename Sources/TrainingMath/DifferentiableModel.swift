/// A model over a flat parameter vector that maps a scalar input to a scalar
/// prediction, with a forward pass that caches its activations and a backward
/// pass that reuses them.
public protocol DifferentiableModel: Sendable {
  /// The model's name on the wire, e.g. `chain`.
  var name: String { get }
  /// The named tensors the flat parameter vector is cut into.
  var layout: [TensorSpec] { get }
  /// Number of parameters (the sum of the layout's counts).
  var parameterCount: Int { get }
  /// Number of cached activations `forward` writes.
  var activationCount: Int { get }

  /// Runs the forward pass, caching every activation in `activations`
  /// (`activationCount` long), and returns the prediction.
  func forward(weights: [Double], input: Double, activations: inout [Double]) -> Double

  /// Adds `outputGradient` · ∂prediction/∂weights to `gradient`, reusing the
  /// activations of the forward pass at the same weights.
  func backward(
    weights: [Double], activations: [Double], outputGradient: Double, gradient: inout [Double])

  /// An upper bound on the absolute rounding error of a computed `prediction`.
  func predictionErrorBound(prediction: Double) -> Double
}

extension DifferentiableModel {
  /// A zeroed activation cache of the right size.
  public func makeActivations() -> [Double] { [Double](repeating: 0, count: activationCount) }

  /// The prediction at `weights` for `input`, without keeping the activations.
  public func predict(weights: [Double], input: Double) -> Double {
    var activations = makeActivations()
    return forward(weights: weights, input: input, activations: &activations)
  }
}
