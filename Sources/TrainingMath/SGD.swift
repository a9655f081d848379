/// Plain stochastic gradient descent: `w ← w − lr·g`, the update the tutorial
/// describes (every gradient taken at the weights before the update).
public struct SGD: Equatable, Sendable {
  /// The learning rate; finite and positive.
  public let learningRate: Double

  /// SGD with `learningRate`, which must be finite and positive.
  public init(learningRate: Double) throws(TrainingMathError) {
    guard learningRate.isFinite, learningRate > 0 else {
      throw .invalidLearningRate(learningRate)
    }
    self.learningRate = learningRate
  }

  /// Applies one step in place.
  public func apply(gradient: [Double], to weights: inout [Double]) {
    precondition(gradient.count == weights.count, "gradient and weights differ in size")
    for index in weights.indices {
      weights[index] = weights[index] - learningRate * gradient[index]
    }
  }
}
