/// The replay check of a sparse push: recompute `lossAndGradient` at the rows
/// the worker was served and compare with the pushed gradient bit for bit (the
/// worker runs the same code; sparse gradients travel as Float64). Like the
/// dense `GradientReplay`, it catches any corruption the code would not have
/// produced (a flipped bit, other rows or rows' values), not a fault both sides share.
public struct SparseGradientReplay: Sendable {
  /// The model the gradient is of.
  public let model: SparseModelSpec

  /// A replay of `model`'s gradients.
  public init(model: SparseModelSpec) { self.model = model }

  /// Replays `gradient`, claimed to be the mean-loss gradient over `rows` of
  /// `data` at the rows `values` of `keys` (sorted, `rowWidth` per key), and
  /// compares exactly; a differing coordinate is named by its key and column.
  /// Throws when the push does not fit the batch.
  public func replay(
    data: SparseDataset, rows: [Int], keys: [UInt64], values: [Double], gradient: [Double]
  ) throws(TrainingMathError) -> ReplayComparison {
    let batch = try SparseBatch(
      pushedRows: rows, keys: keys, values: values, gradient: gradient, data: data, model: model)
    var replayed: [Double] = []
    let batchLoss = model.lossAndGradient(
      of: batch, data: data, values: values, gradient: &replayed)
    let width = model.rowWidth
    var comparison = ReplayComparison(
      pushed: gradient, replayed: replayed, allowed: nil, mode: .exact
    ) { ("key \(keys[$0 / width])", $0 % width) }
    comparison.batchLoss = batchLoss
    return comparison
  }
}
