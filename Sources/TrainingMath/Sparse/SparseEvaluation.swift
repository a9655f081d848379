/// How a sparse model does on rows of a dataset: the mean log loss and the ROC
/// AUC of its scores (`BinaryMetrics`), with the model's rows read through a
/// lookup (the coordinator passes the rows it pulled from the servers). Scores
/// are `SparseModelSpec.score`, the training code's own, so a test figure and
/// a training loss agree on the same rows.
public struct SparseEvaluation: Equatable, Sendable {
  /// Rows evaluated.
  public var count: Int
  /// Their mean log loss (nil for no rows).
  public var meanLogLoss: Double?
  /// The area under the ROC curve of their scores (nil without both labels).
  public var auc: Double?

  /// Evaluates `model` on `rows` of `data` (every row when nil), reading the
  /// row of each key through `row` (`rowWidth` values), `batchSize` rows at a time.
  public init(
    model: SparseModelSpec, data: SparseDataset, rows: [Int]? = nil, batchSize: Int = 1024,
    row: (UInt64) -> ArraySlice<Double>
  ) {
    let rows = rows ?? Array(0..<data.count)
    let scores = Self.scores(model: model, data: data, rows: rows, batchSize: batchSize, row: row)
    let labels = rows.map { data.labels[$0] }
    count = rows.count
    meanLogLoss = BinaryMetrics.meanLogLoss(scores: scores, labels: labels)
    auc = BinaryMetrics.auc(scores: scores, labels: labels)
  }

  /// The raw scores (log-odds) of `model` on `rows` of `data`, in order, with
  /// rows read through `row`; each batch of `batchSize` rows reads its keys once.
  public static func scores(
    model: SparseModelSpec, data: SparseDataset, rows: [Int], batchSize: Int = 1024,
    row: (UInt64) -> ArraySlice<Double>
  ) -> [Double] {
    precondition(batchSize >= 1, "a batch holds a row")
    let width = model.rowWidth
    var scores: [Double] = []
    scores.reserveCapacity(rows.count)
    var values: [Double] = []
    var sums = [Double](repeating: 0, count: width - 1)
    var start = 0
    while start < rows.count {
      let end = min(start + batchSize, rows.count)
      let batch = SparseBatch(rows: Array(rows[start..<end]), data: data, model: model)
      values.removeAll(keepingCapacity: true)
      for key in batch.keys {
        let read = row(key)
        precondition(read.count == width, "a row of \(width) values per key")
        values.append(contentsOf: read)
      }
      for index in batch.rows.indices {
        scores.append(
          model.score(ofBatchRow: index, in: batch, data: data, values: values, factorSums: &sums))
      }
      start = end
    }
    return scores
  }
}
