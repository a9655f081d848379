/// The relative error `|a − n| / max(|a|, |n|)`, 0 when both are 0.
public func relativeError(_ analytic: Double, _ numeric: Double) -> Double {
  let scale = max(abs(analytic), abs(numeric))
  guard scale > 0 else { return 0 }
  return abs(analytic - numeric) / scale
}

/// One comparison of a reported derivative against its finite difference.
public struct GradientComparison: Equatable, Sendable {
  /// What was compared: `w[1]` or `direction`.
  public var label: String
  /// The derivative the worker reported (for a direction, g·u).
  public var analytic: Double
  /// The finite-difference estimate.
  public var numeric: Double
  /// Bound on how far the two may differ from rounding and truncation alone.
  public var noiseBound: Double
  /// The relative tolerance the comparison was judged with.
  public var tolerance: Double
  /// Set when every difference step tried could cross a point where the model
  /// is not differentiable (a ReLU's kink): the difference is then no evidence
  /// about the gradient, and the comparison neither passes on merit nor fails.
  public var crossesKink: Bool = false
  /// The finite-difference step used (smaller than the auditor's when a kink
  /// was near).
  public var step: Double = 0
  /// A probabilistic estimate of the noise, from the loss evaluations'
  /// `BoundedValue.likelyBound` (the truncation estimate and the gradient's own
  /// rounding bound as in `noiseBound`). It decides `isConclusive` only; nil
  /// means the model has no such estimate and `noiseBound` serves for both.
  public var likelyNoise: Double? = nil

  /// `|a − n| / max(|a|, |n|)`.
  public var relativeError: Double { TrainingMath.relativeError(analytic, numeric) }

  /// Disagreement beyond tolerance plus noise: a wrong gradient.
  public var passed: Bool {
    crossesKink
      || abs(analytic - numeric) <= tolerance * max(abs(analytic), abs(numeric)) + noiseBound
  }

  /// Whether the noise is small enough (≤ 1% of the tolerance) for the relative
  /// error to measure the gradient rather than the arithmetic. Near a minimum
  /// the gradient itself shrinks into rounding noise and the comparison says
  /// little; such a check can still fail on a gross error, but its relative
  /// error is not reported as a figure of merit.
  ///
  /// The noise here is `likelyNoise` when there is one: whether a figure is
  /// worth reporting may rest on a probabilistic estimate, whether a gradient
  /// is wrong may not.
  public var isConclusive: Bool {
    !crossesKink && (likelyNoise ?? noiseBound) <= 0.01 * tolerance * magnitude
  }

  /// The size of what was compared: the larger of `|analytic|` and `|numeric|`.
  public var magnitude: Double { max(abs(analytic), abs(numeric)) }

  /// The smallest relative error this comparison would flag: the tolerance
  /// plus the noise bound relative to the derivative (infinite when both
  /// values are 0).
  public var smallestDetectableRelativeError: Double {
    magnitude > 0 ? tolerance + noiseBound / magnitude : .infinity
  }
}

/// The outcome of auditing one gradient: every coordinate checked and one
/// random direction.
public struct GradientAudit: Equatable, Sendable {
  /// Per-coordinate comparisons (all coordinates, or a deterministic subset).
  public var coordinates: [GradientComparison]
  /// The comparison along a random unit direction.
  public var direction: GradientComparison

  /// All comparisons.
  public var comparisons: [GradientComparison] { coordinates + [direction] }
  /// True when no comparison disagrees beyond tolerance and noise.
  public var passed: Bool { comparisons.allSatisfy(\.passed) }
  /// True when at least one comparison is conclusive.
  public var isConclusive: Bool { comparisons.contains(where: \.isConclusive) }
  /// Largest relative error among conclusive comparisons (0 if none).
  public var maximumRelativeError: Double {
    comparisons.filter(\.isConclusive).map(\.relativeError).max() ?? 0
  }
  /// Comparisons skipped because every step tried could cross a kink.
  public var kinkCount: Int { comparisons.filter(\.crossesKink).count }
  /// Largest relative error among all comparisons, conclusive or not.
  public var maximumRawRelativeError: Double {
    comparisons.map(\.relativeError).max() ?? 0
  }
  /// The size of the gradient audited: the largest derivative compared. Near
  /// a minimum it shrinks into rounding noise (~1e-15 for the chain model).
  public var gradientMagnitude: Double { comparisons.map(\.magnitude).max() ?? 0 }
  /// The smallest relative error the audit would flag, at its most sensitive
  /// comparison: where an audit below rounding noise is drawn.
  public var smallestDetectableRelativeError: Double {
    comparisons.map(\.smallestDetectableRelativeError).min() ?? .infinity
  }
}

/// Checks reported gradients against central finite differences of the loss
/// at the same weights and samples.
public struct GradientAuditor<Model: DifferentiableModel>: Sendable {
  /// Default relative tolerance: flags a gradient scaled by 1 + 1e-6, while
  /// correct gradients of the chain model agree to about 1e-11.
  public static var defaultTolerance: Double { 1e-7 }
  /// The finite-difference step of the chain model, the tutorial's eps
  /// (other models may choose their own: `DifferentiableModel.auditStep`).
  public static var defaultStep: Double { 1e-4 }
  /// How many coordinates are checked one by one at most; beyond this a
  /// deterministic random subset is checked (the direction covers all of them).
  public static var defaultMaximumCoordinates: Int { 64 }

  /// The objective whose gradients are audited.
  public let objective: Objective<Model>
  /// Relative tolerance.
  public let tolerance: Double
  /// How the loss is differenced: the step and the truncation estimate.
  public let rule: FiniteDifferenceRule
  /// The finite-difference step (before any shortening near a kink).
  public var step: Double { rule.step }
  /// Coordinates checked one by one at most.
  public let maximumCoordinates: Int
  /// Relative rounding of the gradient values themselves (0 for Float64 gradients
  /// computed exactly as reported; 2^-24 when they travel as Float32).
  public let gradientRounding: Double

  /// An auditor for `model`, by the model's `auditRule`, with `step` instead of
  /// the rule's if given.
  public init(
    model: Model, tolerance: Double = defaultTolerance, step: Double? = nil,
    maximumCoordinates: Int = defaultMaximumCoordinates, gradientRounding: Double = 0
  ) {
    self.objective = Objective(model: model)
    self.tolerance = tolerance
    self.rule = step.map { model.auditRule.with(step: $0) } ?? model.auditRule
    self.maximumCoordinates = maximumCoordinates
    self.gradientRounding = gradientRounding
  }

  /// Audits `gradient`, claimed to be the mean-loss gradient over the rows
  /// `rows` of `dataset` at `weights`. `seed` picks the random direction (and
  /// coordinate subset), so an audit can be repeated exactly.
  public func audit(
    weights: [Double], dataset: Dataset, rows: [Int], gradient: [Double], seed: UInt64
  ) -> GradientAudit {
    let workspace = objective.model.makeWorkspace(batchCapacity: max(1, rows.count))
    workspace.load(rows: rows, of: dataset)
    return audit(weights: weights, workspace: workspace, gradient: gradient, seed: seed)
  }

  /// Audits `gradient` over one-feature `samples` (the tutorial's kind).
  public func audit(weights: [Double], samples: [Sample], gradient: [Double], seed: UInt64)
    -> GradientAudit
  {
    audit(
      weights: weights, workspace: objective.workspace(for: samples), gradient: gradient,
      seed: seed)
  }

  /// Audits `gradient` over the batch loaded in `workspace`.
  public func audit(
    weights: [Double], workspace: BatchWorkspace, gradient: [Double], seed: UInt64
  ) -> GradientAudit {
    precondition(weights.count == objective.model.parameterCount && gradient.count == weights.count)
    let bounds = objective.gradientBounds(weights: weights, workspace: workspace)
    let loss = { (point: [Double]) in objective.boundedLoss(weights: point, workspace: workspace) }
    var generator = SplitMix64(seed: seed)

    var coordinates: [GradientComparison] = []
    var unit = [Double](repeating: 0, count: weights.count)
    for index in coordinateIndices(gradient: gradient, generator: &generator) {
      unit[index] = 1
      let (estimate, usedStep, kink) = difference(
        loss, at: weights, along: unit, bounds: bounds, workspace: workspace)
      unit[index] = 0
      coordinates.append(
        GradientComparison(
          label: "w[\(index)]", analytic: gradient[index], estimate: estimate,
          gradientNoise: bounds.rounding[index],
          relativeGradientNoise: gradientRounding * abs(gradient[index]), tolerance: tolerance,
          step: usedStep, crossesKink: kink))
    }

    let direction = GradientSampling.randomUnitVector(count: weights.count, generator: &generator)
    let (projected, projectedBound) = GradientSampling.project(
      gradient, on: direction, rounding: bounds.rounding, gradientRounding: gradientRounding)
    let (estimate, usedStep, kink) = difference(
      loss, at: weights, along: direction, bounds: bounds, workspace: workspace)
    let directional = GradientComparison(
      label: "direction", analytic: projected, estimate: estimate, gradientNoise: projectedBound,
      tolerance: tolerance, step: usedStep, crossesKink: kink)
    return GradientAudit(coordinates: coordinates, direction: directional)
  }

  /// How many times the step is divided by 16 to get clear of a kink before
  /// the comparison is called inconclusive.
  public static var kinkRetries: Int { 3 }

  /// The five-point difference along `direction`, with a step small enough
  /// that the evaluations (at up to ±2 steps) cross no kink of the model, if
  /// one of `kinkRetries + 1` steps is; otherwise the last estimate and `true`.
  private func difference(
    _ loss: ([Double]) -> BoundedValue, at weights: [Double], along direction: [Double],
    bounds: GradientBounds, workspace: BatchWorkspace
  ) -> (FiniteDifferenceEstimate, step: Double, crossesKink: Bool) {
    var trial = step
    for attempt in 0...Self.kinkRetries {
      let kink = objective.model.mayCrossKink(
        weights: weights, direction: direction, step: 2 * trial, workspace: workspace)
      if !kink || attempt == Self.kinkRetries {
        let estimate = FiniteDifference.directional(
          loss, at: weights, direction: direction, rule: rule.with(step: trial),
          gradientMagnitude: bounds.magnitude)
        return (estimate, trial, kink)
      }
      trial /= 16
    }
    preconditionFailure("unreachable")
  }

  /// How many of the largest-|gradient| coordinates a sampled audit always
  /// checks (when `maximumCoordinates` allows): they are the ones whose
  /// comparisons stand farthest above rounding noise, so the ones that can
  /// measure a small relative fault.
  public static var largestCoordinates: Int { 16 }

  /// Every coordinate when there are at most `maximumCoordinates`; otherwise
  /// the `largestCoordinates` largest by |gradient| (ties to the lower index)
  /// and a seeded random rest, sorted.
  func coordinateIndices(gradient: [Double], generator: inout SplitMix64) -> [Int] {
    GradientSampling.coordinateIndices(
      gradient: gradient, maximum: maximumCoordinates,
      largest: min(Self.largestCoordinates, maximumCoordinates), generator: &generator)
  }
}

/// How audits pick what to compare, shared by the dense and the sparse auditor:
/// the coordinates checked one by one, the random direction, and the gradient's
/// projection on it with its rounding bound.
enum GradientSampling {
  /// Every coordinate when there are at most `maximum`; otherwise the `largest`
  /// largest by |gradient| (ties to the lower index) and a seeded random rest, sorted.
  static func coordinateIndices(
    gradient: [Double], maximum maximumCoordinates: Int, largest: Int,
    generator: inout SplitMix64
  ) -> [Int] {
    let count = gradient.count
    guard count > maximumCoordinates else { return Array(0..<count) }
    var chosen = Set<Int>()
    if largest > 0 {
      // A NaN ranks first: it is certainly worth checking.
      let size = gradient.map { $0.isNaN ? Double.infinity : abs($0) }
      let ranked = size.indices.sorted { left, right in
        size[left] != size[right] ? size[left] > size[right] : left < right
      }
      chosen.formUnion(ranked.prefix(largest))
    }
    while chosen.count < maximumCoordinates {
      chosen.insert(Int(generator.next() % UInt64(count)))
    }
    return chosen.sorted()
  }

  /// A seeded random direction: Gaussian coordinates scaled to length 1.
  static func randomUnitVector(count: Int, generator: inout SplitMix64) -> [Double] {
    var vector = (0..<count).map { _ in generator.nextGaussian() }
    let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
    for index in vector.indices { vector[index] /= norm }
    return vector
  }

  /// g·u, and a bound on its error: the gradient's own (`rounding` per
  /// coordinate, and `gradientRounding` relative for values that travelled as
  /// Float32) along `direction`, and the dot product's summation.
  static func project(
    _ gradient: [Double], on direction: [Double], rounding: [Double], gradientRounding: Double
  ) -> (projected: Double, bound: Double) {
    var projected = 0.0
    var projectedBound = 0.0
    var projectedMagnitude = 0.0
    for index in gradient.indices {
      projected += gradient[index] * direction[index]
      projectedBound +=
        abs(direction[index]) * (rounding[index] + gradientRounding * abs(gradient[index]))
      projectedMagnitude += abs(gradient[index] * direction[index])
    }
    projectedBound += Rounding.gamma(gradient.count) * projectedMagnitude
    return (projected, projectedBound)
  }
}

extension GradientComparison {
  /// How many times the bounded noise a comparison allows: a margin over the
  /// bounds' own slack.
  static let noiseSafety = 2.0

  /// The comparison of `analytic` with a finite-difference `estimate`, allowing
  /// `noiseSafety` times the estimate's error bound plus the reported value's own
  /// (`gradientNoise`, then `relativeGradientNoise`, added in that order).
  init(
    label: String, analytic: Double, estimate: FiniteDifferenceEstimate, gradientNoise: Double,
    relativeGradientNoise: Double = 0, tolerance: Double, step: Double, crossesKink: Bool
  ) {
    let safety = Self.noiseSafety
    self.init(
      label: label, analytic: analytic, numeric: estimate.value,
      noiseBound: safety * (estimate.errorBound + gradientNoise + relativeGradientNoise),
      tolerance: tolerance)
    self.crossesKink = crossesKink
    self.step = step
    if estimate.likelyErrorBound != estimate.errorBound {
      likelyNoise = safety * (estimate.likelyErrorBound + gradientNoise + relativeGradientNoise)
    }
  }
}
