/// An evaluation over every row of a dataset (mean loss and, for classifiers,
/// accuracy) done one batch at a time, so that a loop with other work to do
/// (a coordinator between its messages) can spread it out. Per-example losses
/// are summed in row order whatever the steps, so the result is the same bits
/// as `Objective.evaluate`, which runs one of these to the end.
public struct EvaluationInProgress<Model: DifferentiableModel> {
  /// The weights evaluated.
  public let weights: [Double]
  private let objective: Objective<Model>
  private let dataset: Dataset
  private let workspace: BatchWorkspace
  private var total = 0.0
  private var correct = 0
  /// Rows evaluated so far.
  public private(set) var rowsDone = 0

  /// An evaluation of `objective` at `weights` over `dataset`, in batches of
  /// up to `batchCapacity` rows; nothing is computed until `advance`.
  public init(
    objective: Objective<Model>, weights: [Double], dataset: Dataset, batchCapacity: Int = 256
  ) {
    self.objective = objective
    self.weights = weights
    self.dataset = dataset
    workspace = objective.model.makeWorkspace(
      batchCapacity: max(1, min(batchCapacity, dataset.count)))
  }

  /// Whether every row has been evaluated.
  public var isComplete: Bool { rowsDone >= dataset.count }

  /// Rows in the dataset.
  public var rowCount: Int { dataset.count }

  /// Evaluates the next batch of rows (nothing once complete).
  public mutating func advance() {
    guard !isComplete else { return }
    let end = min(rowsDone + workspace.batchCapacity, dataset.count)
    workspace.load(rows: rowsDone..<end, of: dataset)
    objective.model.forward(weights: weights, workspace: workspace)
    objective.lossFunction.accumulate(workspace: workspace, into: &total, writeGradient: false)
    if objective.lossFunction.isClassification { correct += workspace.correctPredictions() }
    rowsDone = end
  }

  /// The evaluation of the rows done so far (all of them once complete): mean
  /// loss 0 and no accuracy over no rows.
  public var evaluation: Evaluation {
    guard rowsDone > 0 else { return Evaluation(count: 0, loss: 0, correct: nil) }
    return Evaluation(
      count: rowsDone, loss: total / Double(rowsDone),
      correct: objective.lossFunction.isClassification ? correct : nil)
  }
}
