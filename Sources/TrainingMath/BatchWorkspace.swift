/// The buffers of one mini-batch: inputs and targets gathered from a dataset,
/// the model's outputs, the loss's gradient with respect to them, and the
/// model's cached activations. Made once per model and batch capacity
/// (`DifferentiableModel.makeWorkspace(batchCapacity:)`) and reused, so a
/// training step allocates nothing. Belongs to one thread.
public final class BatchWorkspace {
  /// Most examples a batch may hold.
  public let batchCapacity: Int
  /// Features per example.
  public let inputCount: Int
  /// Outputs per example.
  public let outputCount: Int
  /// Examples in the current batch (at most `batchCapacity`).
  public var batchSize = 0
  /// The batch's features, `batchSize × inputCount`, row-major.
  public var inputs: [Double]
  /// The batch's targets: a class index (as a Double) or a regression value, one per example.
  public var targets: [Double]
  /// The model's outputs, `batchSize × outputCount`, row-major.
  public var outputs: [Double]
  /// ∂loss_i/∂output_i per example (not divided by the batch size).
  public var outputGradient: [Double]
  /// For audits: bounds on the rounding error of each output.
  public var outputBounds: [Double]
  /// For audits: bounds on the rounding error of each entry of `outputGradient`.
  public var outputGradientBounds: [Double]
  /// The model's cached activations and scratch buffers in Float64, as it lays them out.
  public var cache: [[Double]]
  /// The model's cached activations and scratch buffers in Float32 (Float32 models).
  public var floatCache: [[Float]]

  /// A workspace for `batchCapacity` examples of `inputCount` features and
  /// `outputCount` outputs, with the model's cache buffers.
  public init(
    batchCapacity: Int, inputCount: Int, outputCount: Int, cache: [[Double]] = [],
    floatCache: [[Float]] = []
  ) {
    precondition(batchCapacity >= 1 && inputCount >= 1 && outputCount >= 1)
    self.batchCapacity = batchCapacity
    self.inputCount = inputCount
    self.outputCount = outputCount
    inputs = [Double](repeating: 0, count: batchCapacity * inputCount)
    targets = [Double](repeating: 0, count: batchCapacity)
    outputs = [Double](repeating: 0, count: batchCapacity * outputCount)
    outputGradient = [Double](repeating: 0, count: batchCapacity * outputCount)
    outputBounds = [Double](repeating: 0, count: batchCapacity * outputCount)
    outputGradientBounds = [Double](repeating: 0, count: batchCapacity * outputCount)
    self.cache = cache
    self.floatCache = floatCache
  }

  /// Copies the rows `rows` of `dataset` into `inputs` and `targets` and sets
  /// `batchSize`. The rows must fit (`rows.count <= batchCapacity`).
  public func load(rows: [Int], of dataset: Dataset) {
    begin(rows.count, of: dataset)
    for slot in 0..<rows.count { copy(row: rows[slot], of: dataset, to: slot) }
  }

  /// Copies the contiguous rows `rows` of `dataset`; see `load(rows:of:)`.
  public func load(rows: Range<Int>, of dataset: Dataset) {
    begin(rows.count, of: dataset)
    for slot in 0..<rows.count { copy(row: rows.lowerBound + slot, of: dataset, to: slot) }
  }

  private func begin(_ count: Int, of dataset: Dataset) {
    precondition(count <= batchCapacity, "batch of \(count) exceeds \(batchCapacity)")
    precondition(dataset.featureCount == inputCount, "dataset and model differ in features")
    batchSize = count
  }

  private func copy(row: Int, of dataset: Dataset, to slot: Int) {
    let width = inputCount
    let source = row * width
    let destination = slot * width
    dataset.features.withUnsafeBufferPointer { features in
      inputs.withUnsafeMutableBufferPointer { inputs in
        for column in 0..<width { inputs[destination + column] = features[source + column] }
      }
    }
    targets[slot] = dataset.labels[row]
  }

  /// Per example, whether the highest output is at the target's index, counted
  /// (classifiers: outputs are class scores, targets class indices).
  public func correctPredictions() -> Int {
    var correct = 0
    for example in 0..<batchSize
    where Double(predictedClass(ofExample: example)) == targets[example] {
      correct += 1
    }
    return correct
  }

  /// The class with the highest output of example `example` of the batch (the
  /// first on a tie), for classifiers after `forward`.
  public func predictedClass(ofExample example: Int) -> Int {
    let base = example * outputCount
    var best = 0
    for k in 1..<max(1, outputCount) where outputs[base + k] > outputs[base + best] { best = k }
    return best
  }
}
