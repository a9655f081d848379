/// The loss `1/2 Σ_k (e_k − ê_k)²` of a prediction `e` against a label `ê`:
/// regression, one output per example (the label is that output's target).
public struct SquaredErrorLoss: Loss, Equatable {
  /// The squared-error loss.
  public init() {}

  public var name: String { "squared" }
  public var isClassification: Bool { false }

  /// The loss value.
  public static func value(prediction: Double, label: Double) -> Double {
    let residual = prediction - label
    return 0.5 * residual * residual
  }

  /// dL/de = e − ê.
  public static func derivative(prediction: Double, label: Double) -> Double {
    prediction - label
  }

  /// Bound on the rounding error of the residual e − ê, given a bound on e's.
  public static func residualErrorBound(
    prediction: Double, label: Double, predictionBound: Double
  ) -> Double {
    predictionBound * (1 + Rounding.unit) + Rounding.unit * abs(prediction - label)
  }

  /// Bound on the rounding error of the loss value, given a bound on e's.
  public static func valueErrorBound(
    prediction: Double, label: Double, predictionBound: Double
  ) -> Double {
    let residual = abs(prediction - label)
    let residualBound = residualErrorBound(
      prediction: prediction, label: label, predictionBound: predictionBound)
    return residual * residualBound + 0.5 * residualBound * residualBound
      + Rounding.gamma(2) * 0.5 * residual * residual
  }

  public func accumulate(workspace: BatchWorkspace, into total: inout Double, writeGradient: Bool) {
    precondition(workspace.outputCount == 1, "squared error has one output per example")
    for example in 0..<workspace.batchSize {
      let prediction = workspace.outputs[example]
      let label = workspace.targets[example]
      total += Self.value(prediction: prediction, label: label)
      if writeGradient {
        workspace.outputGradient[example] = Self.derivative(prediction: prediction, label: label)
      }
    }
  }

  public func accumulateErrorBounds(
    workspace: BatchWorkspace, into total: inout Double, writeGradient: Bool
  ) {
    for example in 0..<workspace.batchSize {
      let prediction = workspace.outputs[example]
      let label = workspace.targets[example]
      let predictionBound = workspace.outputBounds[example]
      total += Self.valueErrorBound(
        prediction: prediction, label: label, predictionBound: predictionBound)
      if writeGradient {
        workspace.outputGradientBounds[example] = Self.residualErrorBound(
          prediction: prediction, label: label, predictionBound: predictionBound)
      }
    }
  }
}
