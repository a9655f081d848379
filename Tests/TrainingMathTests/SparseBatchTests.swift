import Testing

@testable import TrainingMath

@Suite struct SparseBatchTests {
  private static let models: [SparseModelSpec] = [
    try! SparseModelSpec(kind: .logisticRegression, hashBits: 10),
    try! SparseModelSpec(kind: .factorizationMachine(factors: 4), hashBits: 10),
  ]

  @Test func keysAreSortedUniqueWithTheBiasLast() throws {
    var generator = SplitMix64(seed: 1)
    let data = randomSparseData(
      count: 50, maximumNonzeros: 12, featureSpace: 300, generator: &generator)
    for model in Self.models {
      let batch = SparseBatch(rows: [3, 7, 7, 20, 49], data: data, model: model)
      #expect(zip(batch.keys, batch.keys.dropFirst()).allSatisfy { $0 < $1 })
      #expect(batch.keys.last == model.biasKey && batch.biasPosition == batch.keys.count - 1)
      #expect(batch.keys.dropLast().allSatisfy { $0 < (1 << 10) })
      #expect(batch.nonzeroStarts.count == 6)
      for (index, row) in batch.rows.enumerated() {
        let positions = batch.keyPositions[
          batch.nonzeroStarts[index]..<batch.nonzeroStarts[index + 1]]
        let ids = data.featureIDs[data.range(ofRow: row)]
        #expect(positions.map { batch.keys[Int($0)] } == ids.map { model.key(ofFeature: $0) })
      }
    }
  }

  @Test func hashedKeysStayBelowTwoToTheB() throws {
    for bits in [1, 7, 24, 40] {
      let model = try SparseModelSpec(kind: .logisticRegression, hashBits: bits)
      var generator = SplitMix64(seed: UInt64(bits))
      for _ in 0..<2000 { #expect(model.key(ofFeature: generator.next()) < model.biasKey) }
      #expect(model.biasKey == 1 << UInt64(bits))
    }
  }

  @Test(arguments: models)
  func gradientMatchesCentralDifferences(model: SparseModelSpec) {
    var generator = SplitMix64(seed: 7)
    for _ in 0..<5 {
      let data = randomSparseData(
        count: 12, maximumNonzeros: 6, featureSpace: 40, generator: &generator)
      let batch = SparseBatch(rows: Array(0..<12), data: data, model: model)
      let values = randomSparseRows(
        batch, width: model.rowWidth, weightScale: 0.5, factorScale: 0.3, generator: &generator)
      var gradient: [Double] = []
      let loss = model.lossAndGradient(of: batch, data: data, values: values, gradient: &gradient)
      #expect(loss == model.loss(of: batch, data: data, values: values))
      #expect(gradient.count == values.count)
      for coordinate in values.indices {
        let numeric = FiniteDifference.centralDifference(
          { model.loss(of: batch, data: data, values: $0) }, at: values, coordinate: coordinate,
          step: 1e-5)
        #expect(abs(numeric - gradient[coordinate]) <= 1e-8 + 1e-6 * abs(numeric))
      }
    }
  }

  @Test(arguments: models)
  func gradientsAreDeterministic(model: SparseModelSpec) {
    var generator = SplitMix64(seed: 9)
    let data = randomSparseData(
      count: 30, maximumNonzeros: 10, featureSpace: 500, generator: &generator)
    let batch = SparseBatch(rows: Array(0..<30).reversed(), data: data, model: model)
    #expect(batch == SparseBatch(rows: Array(0..<30).reversed(), data: data, model: model))
    let values = randomSparseRows(
      batch, width: model.rowWidth, weightScale: 0.5, factorScale: 0.1, generator: &generator)
    var first: [Double] = []
    var second: [Double] = [1, 2, 3]
    let a = model.lossAndGradient(of: batch, data: data, values: values, gradient: &first)
    let b = model.lossAndGradient(of: batch, data: data, values: values, gradient: &second)
    #expect(a.bitPattern == b.bitPattern)
    #expect(first.map(\.bitPattern) == second.map(\.bitPattern))
  }

  @Test func seededRowsAreTheSameOnEveryRead() throws {
    let model = try SparseModelSpec(kind: .factorizationMachine(factors: 8), hashBits: 20)
    let initialization = model.rowInitialization(seed: 77)
    #expect(initialization == model.rowInitialization(seed: 77))
    #expect(initialization != model.rowInitialization(seed: 78))
    let settings = SparseOptimizerSettings(kind: .adagrad, learningRate: 0.1)
    let left = KeyedTable(width: 9, optimizer: settings, initialization: initialization)
    let right = KeyedTable(width: 9, optimizer: settings, initialization: initialization)
    var a: [Double] = []
    var b: [Double] = []
    left.read([1, 99, model.biasKey], into: &a)
    right.read([1, 99, model.biasKey], into: &b)
    left.read([99], into: &a)
    #expect(a.map(\.bitPattern) == (b + b[9..<18]).map(\.bitPattern))
    #expect(a[0] == 0 && a[9] == 0 && a[1] != a[10])
    #expect(
      try SparseModelSpec(kind: .logisticRegression, hashBits: 20).rowInitialization(seed: 77)
        == .zero)
  }
}
