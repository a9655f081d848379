/// A finite-difference estimate of a directional derivative with bounds on
/// its error, so an audit can tell a wrong gradient from rounding noise.
public struct FiniteDifferenceEstimate: Equatable, Sendable {
  /// The fourth-order (five-point) central difference.
  public var value: Double
  /// The second-order (three-point) central difference from the same evaluations.
  public var threePoint: Double
  /// Bound on the error from rounding in the loss evaluations and the steps.
  public var roundingBound: Double
  /// Estimated truncation error of `value`.
  public var truncationBound: Double

  /// Total error bound of `value`.
  public var errorBound: Double { roundingBound + truncationBound }
}

/// Central finite differences of a loss.
public enum FiniteDifference {
  /// The tutorial's central difference `(f(w + h·e_i) − f(w − h·e_i)) / 2h`.
  public static func centralDifference(
    _ loss: ([Double]) -> Double, at weights: [Double], coordinate: Int, step: Double
  ) -> Double {
    var plus = weights
    var minus = weights
    plus[coordinate] += step
    minus[coordinate] -= step
    return (loss(plus) - loss(minus)) / (2 * step)
  }

  /// Five-point central difference of `loss` at `weights` along `direction`:
  /// `(f(−2h) − 8f(−h) + 8f(h) − f(2h)) / 12h`, where f(s) = loss(w + s·direction).
  ///
  /// `gradientMagnitude[i]` bounds |∂loss/∂w_i| near `weights`; with it the
  /// rounding of the evaluation points w + s·u is bounded. The truncation error
  /// of the five-point rule is O(h²) times that of the three-point rule, so
  /// 1% of their difference bounds it whenever h is inside the loss's radius
  /// of smooth behaviour (h = 1e-4 here).
  public static func directional(
    _ loss: ([Double]) -> BoundedValue, at weights: [Double], direction: [Double], step: Double,
    gradientMagnitude: [Double]
  ) -> FiniteDifferenceEstimate {
    let offsets: [Double] = [-2, -1, 1, 2]
    let coefficients: [Double] = [1, -8, 8, -1]
    var point = weights
    var values = [Double](repeating: 0, count: 4)
    var bounds = [Double](repeating: 0, count: 4)
    for (slot, offset) in offsets.enumerated() {
      for index in weights.indices where direction[index] != 0 {
        point[index] = weights[index] + (offset * step) * direction[index]
      }
      let evaluation = loss(point)
      values[slot] = evaluation.value
      bounds[slot] = evaluation.bound
    }
    // Moving to w + s·u rounds each coordinate by at most u·|w_i + s·u_i|.
    var pointBound = 0.0
    for index in weights.indices where direction[index] != 0 {
      pointBound +=
        gradientMagnitude[index] * Rounding.unit
        * (abs(weights[index]) + 2 * step * abs(direction[index]))
    }
    var numerator = 0.0
    var evaluationBound = 0.0
    for slot in 0..<4 {
      numerator += coefficients[slot] * values[slot]
      evaluationBound +=
        abs(coefficients[slot])
        * (bounds[slot] + pointBound + Rounding.gamma(4) * abs(values[slot]))
    }
    let value = numerator / (12 * step)
    let threePoint = (values[2] - values[1]) / (2 * step)
    let roundingBound = evaluationBound / (12 * step) + Rounding.gamma(3) * abs(value)
    let threePointRounding =
      (bounds[1] + bounds[2] + 2 * pointBound + Rounding.unit * (abs(values[1]) + abs(values[2])))
      / (2 * step)
    // Rounding in either estimate also shows up in their difference; do not count it as truncation.
    let difference = max(0, abs(value - threePoint) - roundingBound - threePointRounding)
    return FiniteDifferenceEstimate(
      value: value, threePoint: threePoint, roundingBound: roundingBound,
      truncationBound: 0.01 * difference)
  }
}
