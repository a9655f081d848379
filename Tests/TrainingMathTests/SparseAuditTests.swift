import Testing

@testable import TrainingMath

@Suite struct SparseAuditTests {
  private struct Push {
    var data: SparseDataset
    var rows: [Int]
    var keys: [UInt64]
    var values: [Double]
    var gradient: [Double]
  }

  /// A correct push of `model` over a random batch of 4...64 rows.
  private func correctPush(_ model: SparseModelSpec, generator: inout SplitMix64) -> Push {
    let data = randomSparseData(
      count: 80, maximumNonzeros: 20, featureSpace: 2000, generator: &generator)
    let size = 4 + Int(generator.next() % 61)
    let rows = (0..<size).map { _ in Int(generator.next() % 80) }
    let batch = SparseBatch(rows: rows, data: data, model: model)
    let values = randomSparseRows(
      batch, width: model.rowWidth, weightScale: 0.3, factorScale: 0.05, generator: &generator)
    var gradient: [Double] = []
    _ = model.lossAndGradient(of: batch, data: data, values: values, gradient: &gradient)
    return Push(data: data, rows: rows, keys: batch.keys, values: values, gradient: gradient)
  }

  private func audit(_ model: SparseModelSpec, _ push: Push, gradient: [Double]? = nil) throws
    -> GradientAudit
  {
    try SparseGradientAuditor(model: model).audit(
      data: push.data, rows: push.rows, keys: push.keys, values: push.values,
      gradient: gradient ?? push.gradient, seed: 5)
  }

  private func replay(_ model: SparseModelSpec, _ push: Push, gradient: [Double]) throws
    -> ReplayComparison
  {
    try SparseGradientReplay(model: model).replay(
      data: push.data, rows: push.rows, keys: push.keys, values: push.values, gradient: gradient)
  }

  private static let models: [SparseModelSpec] = [
    try! SparseModelSpec(kind: .logisticRegression, hashBits: 16),
    try! SparseModelSpec(kind: .factorizationMachine(factors: 8), hashBits: 16),
  ]

  @Test(arguments: models)
  func aCorrectGradientPassesBoth(model: SparseModelSpec) throws {
    var generator = SplitMix64(seed: 3)
    let push = correctPush(model, generator: &generator)
    let audit = try audit(model, push)
    #expect(audit.passed)
    #expect(audit.coordinates.count == 16)
    let replay = try replay(model, push, gradient: push.gradient)
    #expect(replay.passed && replay.differingCount == 0)
    #expect(replay.coordinateCount == push.gradient.count)
  }

  @Test(arguments: models)
  func corruptedGradientsAreCaught(model: SparseModelSpec) throws {
    var generator = SplitMix64(seed: 4)
    let push = correctPush(model, generator: &generator)
    let largest = push.gradient.indices.max { abs(push.gradient[$0]) < abs(push.gradient[$1]) }!
    let scaled = push.gradient.map { $0 * 1.001 }
    var flipped = push.gradient
    flipped[largest].negate()
    var bit = push.gradient
    let target = push.gradient.count / 2
    bit[target] = Double(bitPattern: bit[target].bitPattern ^ (1 << 40))

    for wrong in [scaled, flipped] {
      #expect(try !audit(model, push, gradient: wrong).passed)
      #expect(try !replay(model, push, gradient: wrong).passed)
    }
    let scaledReplay = try replay(model, push, gradient: scaled)
    #expect(scaledReplay.first?.index == push.gradient.firstIndex { $0 * 1.001 != $0 })
    let flippedReplay = try replay(model, push, gradient: flipped)
    #expect(flippedReplay.mismatchCount == 1 && flippedReplay.first?.index == largest)
    #expect(flippedReplay.worst?.index == largest)
    let bitReplay = try replay(model, push, gradient: bit)
    #expect(bitReplay.mismatchCount == 1 && bitReplay.first?.index == target)
    let key = push.keys[target / model.rowWidth]
    #expect(bitReplay.first?.label == "key \(key)[\(target % model.rowWidth)]")
  }

  @Test(arguments: models)
  func correctGradientsNeverFail(model: SparseModelSpec) throws {
    var generator = SplitMix64(seed: 2026)
    var failures = 0
    for trial in 0..<200 {
      let push = correctPush(model, generator: &generator)
      let audit = try SparseGradientAuditor(model: model).audit(
        data: push.data, rows: push.rows, keys: push.keys, values: push.values,
        gradient: push.gradient, seed: UInt64(trial))
      if !audit.passed { failures += 1 }
      if try !replay(model, push, gradient: push.gradient).passed { failures += 1 }
    }
    #expect(failures == 0)
  }

  @Test func aPushThatDoesNotFitItsBatchIsRefused() throws {
    let model = Self.models[1]
    var generator = SplitMix64(seed: 8)
    let push = correctPush(model, generator: &generator)
    let auditor = SparseGradientAuditor(model: model)
    #expect(throws: TrainingMathError.self) {
      try auditor.audit(
        data: push.data, rows: push.rows, keys: Array(push.keys.dropFirst()),
        values: Array(push.values.dropFirst(9)), gradient: Array(push.gradient.dropFirst(9)),
        seed: 1)
    }
    #expect(throws: TrainingMathError.self) {
      try SparseGradientReplay(model: model).replay(
        data: push.data, rows: push.rows, keys: push.keys, values: push.values,
        gradient: Array(push.gradient.dropLast()))
    }
    #expect(throws: TrainingMathError.self) {
      try auditor.audit(
        data: push.data, rows: [80], keys: push.keys, values: push.values,
        gradient: push.gradient, seed: 1)
    }
  }
}
