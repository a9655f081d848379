/// A loss value together with a bound on its absolute rounding error.
public struct BoundedValue: Equatable, Sendable {
  /// The computed value.
  public var value: Double
  /// |computed − exact| is at most this.
  public var bound: Double
  /// A probabilistic estimate of |computed − exact| (at most `bound`; equal to
  /// it when there is none): what an audit uses to call a comparison conclusive.
  public var likelyBound: Double

  /// A value with its rounding bound and, if known, a sharper probabilistic estimate.
  public init(value: Double, bound: Double, likelyBound: Double? = nil) {
    self.value = value
    self.bound = bound
    self.likelyBound = min(bound, likelyBound ?? bound)
  }
}

/// How a model does on a set of rows: mean loss and, for classifiers, accuracy.
public struct Evaluation: Equatable, Sendable {
  /// Rows evaluated.
  public var count: Int
  /// Mean loss over them.
  public var loss: Double
  /// Rows whose highest-scoring class is their label (classifiers only).
  public var correct: Int?

  /// An evaluation of `count` rows with mean `loss`, `correct` of them classified right.
  public init(count: Int, loss: Double, correct: Int?) {
    self.count = count
    self.loss = loss
    self.correct = correct
  }

  /// The fraction of rows classified right, or nil for a regression model.
  public var accuracy: Double? { correct.map { count > 0 ? Double($0) / Double(count) : 0 } }
}

/// The training objective of a model: the mean of its loss over a mini-batch
/// of a dataset's rows, its gradient by backpropagation, and rounding bounds
/// for audits. Batches go through a `BatchWorkspace`, so a loop over batches
/// allocates nothing.
public struct Objective<Model: DifferentiableModel>: Sendable {
  /// The model whose loss this is.
  public let model: Model
  /// The model's loss.
  public let lossFunction: any Loss

  /// The objective of `model`.
  public init(model: Model) {
    self.model = model
    self.lossFunction = model.loss
  }

  // MARK: The batch in a workspace

  /// Mean loss of the batch loaded in `workspace`, at `weights`.
  public func loss(weights: [Double], workspace: BatchWorkspace) -> Double {
    guard workspace.batchSize > 0 else { return 0 }
    model.forward(weights: weights, workspace: workspace)
    var total = 0.0
    lossFunction.accumulate(workspace: workspace, into: &total, writeGradient: false)
    return total / Double(workspace.batchSize)
  }

  /// Writes the gradient of the mean loss of the batch loaded in `workspace`
  /// into `gradient` and returns the mean loss. Forward caches activations;
  /// backward reuses them.
  @discardableResult
  public func gradient(weights: [Double], workspace: BatchWorkspace, into gradient: inout [Double])
    -> Double
  {
    guard workspace.batchSize > 0 else {
      for index in gradient.indices { gradient[index] = 0 }
      return 0
    }
    model.forward(weights: weights, workspace: workspace)
    var total = 0.0
    lossFunction.accumulate(workspace: workspace, into: &total, writeGradient: true)
    model.backward(weights: weights, workspace: workspace, gradient: &gradient)
    return total / Double(workspace.batchSize)
  }

  /// The mean loss of the batch in `workspace` with a bound on its rounding error.
  public func boundedLoss(weights: [Double], workspace: BatchWorkspace) -> BoundedValue {
    guard workspace.batchSize > 0 else { return BoundedValue(value: 0, bound: 0) }
    let (total, bound) = lossWithErrorBound(weights: weights, workspace: workspace, gradient: false)
    let count = Double(workspace.batchSize)
    let mean = total / count
    // Summation error γ(n)·Σ|v| (every per-example loss is >= 0) and the division's own rounding.
    let summation = Rounding.gamma(workspace.batchSize) * total
    var likely: Double? = nil
    if model.likelyOutputErrors(weights: weights, workspace: workspace) {
      var estimate = 0.0
      lossFunction.accumulateErrorBounds(
        workspace: workspace, into: &estimate, writeGradient: false)
      likely = (estimate + summation) / count + Rounding.unit * mean
    }
    return BoundedValue(
      value: mean, bound: (bound + summation) / count + Rounding.unit * mean, likelyBound: likely)
  }

  /// Per coordinate, bounds on the rounding error of the backpropagated mean
  /// gradient of the batch in `workspace` and on |∂loss/∂w_i| itself.
  public func gradientBounds(weights: [Double], workspace: BatchWorkspace) -> GradientBounds {
    guard workspace.batchSize > 0 else {
      let zeros = [Double](repeating: 0, count: model.parameterCount)
      return GradientBounds(rounding: zeros, magnitude: zeros)
    }
    _ = lossWithErrorBound(weights: weights, workspace: workspace, gradient: true)
    return model.gradientErrorBounds(weights: weights, workspace: workspace)
  }

  /// The forward pass with the output bounds, and the batch's summed loss with
  /// a bound on its rounding; with `gradient`, the loss's output gradient and
  /// its bounds are left in the workspace too.
  private func lossWithErrorBound(weights: [Double], workspace: BatchWorkspace, gradient: Bool)
    -> (total: Double, bound: Double)
  {
    model.forward(weights: weights, workspace: workspace)
    var total = 0.0
    lossFunction.accumulate(workspace: workspace, into: &total, writeGradient: gradient)
    model.outputErrorBounds(weights: weights, workspace: workspace)
    var bound = 0.0
    lossFunction.accumulateErrorBounds(workspace: workspace, into: &bound, writeGradient: gradient)
    return (total, bound)
  }

  // MARK: Rows of a dataset

  /// Writes the gradient of the mean loss over `rows` of `dataset` into
  /// `gradient` and returns the mean loss, in the caller's workspace.
  @discardableResult
  public func gradient(
    weights: [Double], dataset: Dataset, rows: [Int], into gradient: inout [Double],
    workspace: BatchWorkspace
  ) -> Double {
    workspace.load(rows: rows, of: dataset)
    return self.gradient(weights: weights, workspace: workspace, into: &gradient)
  }

  /// The gradient of the mean loss over `rows` of `dataset`, as a new array.
  public func gradient(weights: [Double], dataset: Dataset, rows: [Int]) -> [Double] {
    var result = [Double](repeating: 0, count: model.parameterCount)
    let workspace = model.makeWorkspace(batchCapacity: max(1, rows.count))
    gradient(weights: weights, dataset: dataset, rows: rows, into: &result, workspace: workspace)
    return result
  }

  /// Mean loss and, for classifiers, accuracy over every row of `dataset`,
  /// in batches of `batchCapacity`. Per-example losses are summed in row order.
  public func evaluate(weights: [Double], dataset: Dataset, batchCapacity: Int = 256) -> Evaluation
  {
    var evaluation = EvaluationInProgress(
      objective: self, weights: weights, dataset: dataset, batchCapacity: batchCapacity)
    while !evaluation.isComplete { evaluation.advance() }
    return evaluation.evaluation
  }

  /// Mean loss over every row of `dataset`.
  public func loss(weights: [Double], dataset: Dataset) -> Double {
    evaluate(weights: weights, dataset: dataset).loss
  }

  // MARK: One-feature samples (the tutorial's kind)

  /// Mean loss over `samples` at `weights` (0 for an empty batch).
  public func loss(weights: [Double], samples: [Sample]) -> Double {
    guard !samples.isEmpty else { return 0 }
    return loss(weights: weights, workspace: workspace(for: samples))
  }

  /// Writes the gradient of the mean loss over `samples` into `gradient` and
  /// returns the mean loss.
  @discardableResult
  public func gradient(weights: [Double], samples: [Sample], into gradient: inout [Double])
    -> Double
  {
    self.gradient(weights: weights, workspace: workspace(for: samples), into: &gradient)
  }

  /// The gradient over `samples` as a new array.
  public func gradient(weights: [Double], samples: [Sample]) -> [Double] {
    var result = [Double](repeating: 0, count: model.parameterCount)
    gradient(weights: weights, samples: samples, into: &result)
    return result
  }

  /// The mean loss over `samples` with a bound on its rounding error.
  public func boundedLoss(weights: [Double], samples: [Sample]) -> BoundedValue {
    boundedLoss(weights: weights, workspace: workspace(for: samples))
  }

  /// Rounding and magnitude bounds of the mean gradient over `samples`.
  public func gradientBounds(weights: [Double], samples: [Sample]) -> GradientBounds {
    gradientBounds(weights: weights, workspace: workspace(for: samples))
  }

  /// A workspace holding `samples` (one feature each) as its batch.
  public func workspace(for samples: [Sample]) -> BatchWorkspace {
    let dataset = Dataset(samples: samples)
    let workspace = model.makeWorkspace(batchCapacity: max(1, samples.count))
    workspace.load(rows: 0..<samples.count, of: dataset)
    return workspace
  }
}
