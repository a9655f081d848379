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

  /// The same two from the loss evaluations' probabilistic rounding estimates
  /// (`BoundedValue.likelyBound`): what decides whether a comparison is
  /// conclusive. The truncation estimate is then at least `truncationBound`,
  /// since less of the rules' difference is put down to rounding.
  public var likelyRoundingBound: Double = 0
  public var likelyTruncationBound: Double = 0

  /// Total error bound of `value`.
  public var errorBound: Double { roundingBound + truncationBound }
  /// Total probabilistic error estimate of `value`.
  public var likelyErrorBound: Double { likelyRoundingBound + likelyTruncationBound }
}

/// How an audit differences a model's loss: the step, and how the five-point
/// rule's truncation error is estimated.
public struct FiniteDifferenceRule: Equatable, Sendable {
  /// The step h: the five-point rule evaluates the loss at ±h and ±2h.
  public var step: Double
  /// When set, the loss is also evaluated at ±h/2, the derivative is the
  /// five-point rule at h/2, and its truncation is bounded by its whole
  /// difference from the five-point rule at h (about 15 times the truncation
  /// error, which shrinks 16-fold as the step halves). Otherwise the
  /// truncation is 1% of the five-point rule's difference from the
  /// three-point rule at h, which is too coarse for long steps.
  public var checksHalfStep: Bool

  /// A rule with step `step`.
  public init(step: Double, checksHalfStep: Bool = false) {
    self.step = step
    self.checksHalfStep = checksHalfStep
  }

  /// The tutorial's: h = 1e-4, truncation from the three-point rule.
  public static let tutorial = FiniteDifferenceRule(step: 1e-4)

  /// The same rule with another step.
  public func with(step: Double) -> FiniteDifferenceRule {
    FiniteDifferenceRule(step: step, checksHalfStep: checksHalfStep)
  }
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
    directional(
      loss, at: weights, direction: direction, rule: FiniteDifferenceRule(step: step),
      gradientMagnitude: gradientMagnitude)
  }

  /// The five-point difference by `rule` (see `FiniteDifferenceRule`).
  public static func directional(
    _ loss: ([Double]) -> BoundedValue, at weights: [Double], direction: [Double],
    rule: FiniteDifferenceRule, gradientMagnitude: [Double]
  ) -> FiniteDifferenceEstimate {
    let step = rule.step
    // Slots 0...3 at −2h, −h, h, 2h; with the half-step check 4, 5 at ∓h/2.
    let offsets: [Double] = rule.checksHalfStep ? [-2, -1, 1, 2, -0.5, 0.5] : [-2, -1, 1, 2]
    var point = weights
    var values = [Double](repeating: 0, count: offsets.count)
    var bounds = [Double](repeating: 0, count: offsets.count)
    var likelyBounds = [Double](repeating: 0, count: offsets.count)
    for (slot, offset) in offsets.enumerated() {
      for index in weights.indices where direction[index] != 0 {
        point[index] = weights[index] + (offset * step) * direction[index]
      }
      let evaluation = loss(point)
      values[slot] = evaluation.value
      bounds[slot] = evaluation.bound
      likelyBounds[slot] = evaluation.likelyBound
    }
    // Moving to w + s·u rounds each coordinate by at most u·|w_i + s·u_i|.
    var pointBound = 0.0
    for index in weights.indices where direction[index] != 0 {
      pointBound +=
        gradientMagnitude[index] * Rounding.unit
        * (abs(weights[index]) + 2 * step * abs(direction[index]))
    }
    // The five-point rule at step h from the slots at −2h, −h, h, 2h, with its
    // rounding bound from the evaluations' `bounds`.
    func fivePoint(_ slots: [Int], _ h: Double, _ bounds: [Double]) -> (
      value: Double, rounding: Double
    ) {
      let coefficients: [Double] = [1, -8, 8, -1]
      var numerator = 0.0
      var evaluationBound = 0.0
      for (coefficient, slot) in zip(coefficients, slots) {
        numerator += coefficient * values[slot]
        evaluationBound +=
          abs(coefficient) * (bounds[slot] + pointBound + Rounding.gamma(4) * abs(values[slot]))
      }
      let value = numerator / (12 * h)
      return (value, evaluationBound / (12 * h) + Rounding.gamma(3) * abs(value))
    }
    // The three-point rule at step h from the slots at −h, h, with its rounding bound.
    func threePoint(_ minus: Int, _ plus: Int, _ h: Double, _ bounds: [Double]) -> (
      value: Double, rounding: Double
    ) {
      let value = (values[plus] - values[minus]) / (2 * h)
      let rounding =
        (bounds[minus] + bounds[plus] + 2 * pointBound
          + Rounding.unit * (abs(values[minus]) + abs(values[plus]))) / (2 * h)
      return (value, rounding)
    }
    // From the evaluations' `bounds`: value, three-point value, rounding, truncation.
    func estimate(_ bounds: [Double]) -> (Double, Double, Double, Double) {
      let coarse = fivePoint([0, 1, 2, 3], step, bounds)
      guard rule.checksHalfStep else {
        let three = threePoint(1, 2, step, bounds)
        // Rounding in either estimate also shows up in their difference; do not count it as truncation.
        let difference = max(0, abs(coarse.value - three.value) - coarse.rounding - three.rounding)
        return (coarse.value, three.value, coarse.rounding, 0.01 * difference)
      }
      let fine = fivePoint([1, 4, 5, 2], step / 2, bounds)
      let three = threePoint(4, 5, step / 2, bounds)
      let difference = max(0, abs(coarse.value - fine.value) - coarse.rounding - fine.rounding)
      return (fine.value, three.value, fine.rounding, difference)
    }
    let (value, three, rounding, truncation) = estimate(bounds)
    var result = FiniteDifferenceEstimate(
      value: value, threePoint: three, roundingBound: rounding, truncationBound: truncation)
    if likelyBounds == bounds {
      result.likelyRoundingBound = rounding
      result.likelyTruncationBound = truncation
    } else {
      let (_, _, likelyRounding, likelyTruncation) = estimate(likelyBounds)
      result.likelyRoundingBound = likelyRounding
      result.likelyTruncationBound = likelyTruncation
    }
    return result
  }
}
