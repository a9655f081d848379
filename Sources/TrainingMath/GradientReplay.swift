/// How a replayed gradient is compared with the pushed one.
public enum ReplayMode: String, Equatable, Sendable, CaseIterable {
  /// Bit for bit: the worker ran the same code on the same kind of CPU, so the
  /// same weights and rows give the same bits (BLAS products are deterministic
  /// for a given kernel, and nothing in a pass depends on the workspace's capacity).
  case exact
  /// Within rounding: each coordinate may differ by twice the model's bound on
  /// the rounding error of a computed gradient (both computations may be off by
  /// it), plus the wire's rounding to Float32 of both values, for workers whose
  /// kernels may sum in another order (another CPU's BLAS path).
  case rounding
}

/// One coordinate where a replay and the pushed gradient differ.
public struct ReplayDifference: Equatable, Sendable {
  /// The coordinate's index in the flat gradient.
  public var index: Int
  /// The tensor it belongs to.
  public var tensor: String
  /// Its index inside the tensor (row-major).
  public var tensorIndex: Int
  /// The value the worker pushed.
  public var pushed: Double
  /// The value the replay computed (rounded as the wire rounded the pushed one).
  public var replayed: Double
  /// The difference allowed (0 in exact mode).
  public var allowed: Double

  /// `layer1.weight[12]`.
  public var label: String { "\(tensor)[\(tensorIndex)]" }

  /// |pushed − replayed|, infinite when either is not finite and their bits differ.
  public var difference: Double {
    let gap = abs(pushed - replayed)
    return gap.isNaN ? .infinity : gap
  }
}

/// The outcome of replaying one gradient: how many coordinates differ, where,
/// and by how much.
public struct ReplayComparison: Equatable, Sendable {
  /// How the coordinates were compared.
  public var mode: ReplayMode
  /// Coordinates compared (the whole gradient).
  public var coordinateCount: Int
  /// Coordinates whose bits differ.
  public var differingCount: Int
  /// Coordinates that fail the comparison: those whose bits differ (exact), or
  /// whose difference exceeds the rounding bound (rounding).
  public var mismatchCount: Int
  /// The first coordinate that fails (nil when none does).
  public var first: ReplayDifference?
  /// The coordinate with the largest |difference| (nil when no bits differ).
  public var worst: ReplayDifference?
  /// The mean loss over the replayed rows at the pushed weights, which the
  /// replay computes on the way (nil when it was not recorded): the audited
  /// batch's training loss.
  public var batchLoss: Double?

  /// Whether every coordinate passed.
  public var passed: Bool { mismatchCount == 0 }
  /// The largest |pushed − replayed| (0 when every bit agrees).
  public var largestDifference: Double { worst?.difference ?? 0 }
}

/// The replay check: recompute a pushed gradient with the same code at the
/// same weights and rows, the way a worker computes it (`Objective.gradient`
/// over a `BatchWorkspace` holding exactly those rows), and compare the two.
/// It catches any corruption of the gradient the code would not have produced,
/// however small (a flipped mantissa bit, other rows, other weights); it cannot
/// catch what both sides share: the data file, a bug in the code itself, or a
/// fault that strikes the replaying machine the same way.
public struct GradientReplay<Model: DifferentiableModel>: Sendable {
  /// The objective the gradient is of.
  public let objective: Objective<Model>
  /// How the coordinates are compared.
  public let mode: ReplayMode

  /// A replay of `model`'s gradients, compared by `mode`.
  public init(model: Model, mode: ReplayMode = .exact) {
    self.objective = Objective(model: model)
    self.mode = mode
  }

  /// Replays `gradient`, claimed to be the mean-loss gradient over `rows` of
  /// `dataset` at `weights`, in a fresh workspace.
  public func replay(weights: [Double], dataset: Dataset, rows: [Int], gradient: [Double])
    -> ReplayComparison
  {
    let model = objective.model
    precondition(weights.count == model.parameterCount && gradient.count == weights.count)
    // A workspace for exactly these rows: the passes read only the first
    // `batchSize` rows of each buffer and the products are packed by the batch,
    // so the capacity does not change a bit (the last, short batch of a worker's
    // epoch runs in a larger workspace; the tests check both agree).
    let workspace = model.makeWorkspace(batchCapacity: max(1, rows.count))
    workspace.load(rows: rows, of: dataset)
    var replayed = [Double](repeating: 0, count: model.parameterCount)
    let batchLoss = objective.gradient(weights: weights, workspace: workspace, into: &replayed)
    // The pushed gradient travelled in the layout's element types: round alike.
    model.layout.roundToElementTypes(&replayed)
    let allowed: [Double]?
    switch mode {
    case .exact: allowed = nil
    case .rounding:
      let bounds = objective.gradientBounds(weights: weights, workspace: workspace)
      allowed = Self.allowedDifferences(
        rounding: bounds.rounding, layout: model.layout, pushed: gradient, replayed: replayed)
    }
    var comparison = Self.compare(
      pushed: gradient, replayed: replayed, layout: model.layout, allowed: allowed, mode: mode)
    comparison.batchLoss = batchLoss
    return comparison
  }

  /// Per coordinate, how far two computations of it may differ: each is off
  /// the exact gradient by at most `rounding` (so twice that), and a value that
  /// travelled as Float32 was rounded once more, by at most u₃₂ of its size.
  static func allowedDifferences(
    rounding: [Double], layout: [TensorSpec], pushed: [Double], replayed: [Double]
  ) -> [Double] {
    var allowed = rounding.map { 2 * $0 }
    var offset = 0
    let unit = ElementType.float32.unitRoundoff
    for spec in layout {
      if spec.elementType == .float32 {
        for index in offset..<(offset + spec.count) {
          allowed[index] += unit * (abs(pushed[index]) + abs(replayed[index]))
        }
      }
      offset += spec.count
    }
    return allowed
  }

  /// Compares `pushed` with `replayed` coordinate by coordinate: by their bits
  /// (`allowed` nil), or within `allowed` per coordinate (equal bits always pass;
  /// a NaN or infinity passes only with equal bits).
  public static func compare(
    pushed: [Double], replayed: [Double], layout: [TensorSpec], allowed: [Double]?,
    mode: ReplayMode
  ) -> ReplayComparison {
    precondition(layout.totalCount == pushed.count)
    var tensor = 0
    var tensorStart = 0
    return ReplayComparison(
      pushed: pushed, replayed: replayed, allowed: allowed, mode: mode
    ) { index in
      while index >= tensorStart + layout[tensor].count {
        tensorStart += layout[tensor].count
        tensor += 1
      }
      return (layout[tensor].name, index - tensorStart)
    }
  }
}

extension ReplayComparison {
  /// Compares `pushed` with `replayed` coordinate by coordinate: by their bits
  /// (`allowed` nil), or within `allowed` per coordinate (equal bits always pass;
  /// a NaN or infinity passes only with equal bits). `locate` names a differing
  /// coordinate: its tensor (or key) and its index there; it is called with
  /// increasing indices.
  public init(
    pushed: [Double], replayed: [Double], allowed: [Double]?, mode: ReplayMode,
    locate: (Int) -> (tensor: String, index: Int)
  ) {
    precondition(pushed.count == replayed.count)
    var result = ReplayComparison(
      mode: mode, coordinateCount: pushed.count, differingCount: 0, mismatchCount: 0)
    for index in pushed.indices where pushed[index].bitPattern != replayed[index].bitPattern {
      let limit = allowed?[index] ?? 0
      let (tensor, tensorIndex) = locate(index)
      let difference = ReplayDifference(
        index: index, tensor: tensor, tensorIndex: tensorIndex,
        pushed: pushed[index], replayed: replayed[index], allowed: limit)
      result.differingCount += 1
      let fails = allowed == nil || !(difference.difference <= limit)
      if fails {
        result.mismatchCount += 1
        if result.first == nil { result.first = difference }
      }
      if result.worst.map({ difference.difference > $0.difference }) ?? true {
        result.worst = difference
      }
    }
    self = result
  }
}
