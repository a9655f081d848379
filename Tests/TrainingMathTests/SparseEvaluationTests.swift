import Testing

@testable import TrainingMath

@Suite struct SparseEvaluationTests {
  @Test func figuresMatchTheBatchLossAndDoNotDependOnTheBatchSize() throws {
    let model = try SparseModelSpec(kind: .factorizationMachine(factors: 3), hashBits: 12)
    var generator = SplitMix64(seed: 31)
    let data = randomSparseData(
      count: 300, maximumNonzeros: 8, featureSpace: 500, generator: &generator)
    var table = KeyedTable(
      width: 4, optimizer: SparseOptimizerSettings(kind: .sgd, learningRate: 0.5),
      initialization: model.rowInitialization(seed: 2))
    let all = SparseBatch(rows: Array(0..<300), data: data, model: model)
    var values: [Double] = []
    table.read(all.keys, into: &values)
    for _ in 0..<20 {
      var gradient: [Double] = []
      _ = model.lossAndGradient(of: all, data: data, values: values, gradient: &gradient)
      table.apply(all.keys, gradients: gradient)
      values.removeAll()
      table.read(all.keys, into: &values)
    }
    let lookup = { (key: UInt64) -> ArraySlice<Double> in
      var row: [Double] = []
      table.read([key], into: &row)
      return row[...]
    }
    let whole = SparseEvaluation(model: model, data: data, row: lookup)
    let small = SparseEvaluation(model: model, data: data, batchSize: 7, row: lookup)
    #expect(whole == small && whole.count == 300)
    let loss = model.loss(of: all, data: data, values: values)
    #expect(abs(whole.meanLogLoss! - loss) <= 1e-14)
    let scores = SparseEvaluation.scores(
      model: model, data: data, rows: Array(0..<300), row: lookup)
    #expect(whole.auc == BinaryMetrics.auc(scores: scores, labels: data.labels))
    // Trained on these rows, the model ranks them better than chance.
    #expect(whole.auc! > 0.6)
    let some = SparseEvaluation(model: model, data: data, rows: [4, 2], row: lookup)
    #expect(some.count == 2)
  }
}
