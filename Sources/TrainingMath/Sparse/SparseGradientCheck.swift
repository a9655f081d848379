/// Checks a sparse push's gradient against central finite differences of the
/// batch's loss at the rows the worker was served, the sparse counterpart of
/// `GradientAuditor`: one seeded random direction over every touched
/// coordinate, and a seeded sample of coordinates one by one (the largest by
/// |gradient| and random others), each judged with the dense auditor's
/// tolerance rules against the rounding bounds of `SparseModelSpec.boundedLoss`
/// and `gradientBounds`. The coordinator passes the join of every server
/// shard's part of one push (keys merged in order).
public struct SparseGradientAuditor: Sendable {
  /// Default relative tolerance, as the dense auditor's.
  public static var defaultTolerance: Double { 1e-7 }
  /// Coordinates checked one by one at most (half the largest, half random).
  public static var defaultMaximumCoordinates: Int { 16 }

  /// The model whose gradients are audited.
  public let model: SparseModelSpec
  /// Relative tolerance.
  public let tolerance: Double
  /// How the loss is differenced (log loss is smooth: the tutorial's rule).
  public let rule: FiniteDifferenceRule
  /// Coordinates checked one by one at most.
  public let maximumCoordinates: Int

  /// An auditor of `model`'s gradients.
  public init(
    model: SparseModelSpec, tolerance: Double = defaultTolerance,
    rule: FiniteDifferenceRule = .tutorial, maximumCoordinates: Int = defaultMaximumCoordinates
  ) {
    self.model = model
    self.tolerance = tolerance
    self.rule = rule
    self.maximumCoordinates = maximumCoordinates
  }

  /// Audits `gradient`, claimed to be the mean-loss gradient over `rows` of
  /// `data` with respect to the rows `values` of `keys` (`rowWidth` per key,
  /// keys sorted as the batch's). `seed` picks the direction and the sample, so
  /// an audit can be repeated exactly. Throws when the push does not fit the
  /// batch (other keys, or the wrong number of values).
  public func audit(
    data: SparseDataset, rows: [Int], keys: [UInt64], values: [Double], gradient: [Double],
    seed: UInt64
  ) throws(TrainingMathError) -> GradientAudit {
    let batch = try SparseBatch(
      pushedRows: rows, keys: keys, values: values, gradient: gradient, data: data, model: model)
    let bounds = model.gradientBounds(of: batch, data: data, values: values, step: rule.step)
    let loss = { (point: [Double]) in model.boundedLoss(of: batch, data: data, values: point) }
    var generator = SplitMix64(seed: seed)
    var coordinates: [GradientComparison] = []
    var unit = [Double](repeating: 0, count: values.count)
    let sampled = GradientSampling.coordinateIndices(
      gradient: gradient, maximum: maximumCoordinates, largest: maximumCoordinates / 2,
      generator: &generator)
    for index in sampled {
      unit[index] = 1
      let estimate = FiniteDifference.directional(
        loss, at: values, direction: unit, rule: rule, gradientMagnitude: bounds.magnitude)
      unit[index] = 0
      let key = keys[index / model.rowWidth]
      coordinates.append(
        GradientComparison(
          label: "key \(key)[\(index % model.rowWidth)]", analytic: gradient[index],
          estimate: estimate, gradientNoise: bounds.rounding[index], tolerance: tolerance,
          step: rule.step, crossesKink: false))
    }
    let direction = GradientSampling.randomUnitVector(count: values.count, generator: &generator)
    let (projected, projectedBound) = GradientSampling.project(
      gradient, on: direction, rounding: bounds.rounding, gradientRounding: 0)
    let estimate = FiniteDifference.directional(
      loss, at: values, direction: direction, rule: rule, gradientMagnitude: bounds.magnitude)
    let directional = GradientComparison(
      label: "direction", analytic: projected, estimate: estimate, gradientNoise: projectedBound,
      tolerance: tolerance, step: rule.step, crossesKink: false)
    return GradientAudit(coordinates: coordinates, direction: directional)
  }
}

extension SparseBatch {
  /// The batch of a pushed gradient, checked against what was pushed: the rows
  /// exist, the keys are the ones the rows touch (sorted, the bias last), and
  /// `values` and `gradient` hold `rowWidth` values per key.
  public init(
    pushedRows rows: [Int], keys: [UInt64], values: [Double], gradient: [Double],
    data: SparseDataset, model: SparseModelSpec
  ) throws(TrainingMathError) {
    guard !rows.isEmpty else { throw .sparsePushMismatch("the push names no rows") }
    if let row = rows.first(where: { !(0..<data.count).contains($0) }) {
      throw .sparsePushMismatch("row \(row) is not in the dataset's \(data.count) rows")
    }
    let batch = SparseBatch(rows: rows, data: data, model: model)
    guard batch.keys == keys else {
      let common = min(batch.keys.count, keys.count)
      let first = (0..<common).first { batch.keys[$0] != keys[$0] } ?? common
      throw .sparsePushMismatch(
        "the rows touch \(batch.keys.count) keys, the push has \(keys.count); they differ from position \(first)"
      )
    }
    let expected = keys.count * model.rowWidth
    guard values.count == expected, gradient.count == expected else {
      throw .sparsePushMismatch(
        "\(keys.count) keys of width \(model.rowWidth) need \(expected) values, got \(values.count) served and \(gradient.count) pushed"
      )
    }
    self = batch
  }
}
