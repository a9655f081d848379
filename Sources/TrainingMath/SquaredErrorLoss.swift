/// The loss `1/2 (e − ê)²` of a prediction `e` against a label `ê`.
public enum SquaredErrorLoss {
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
}
