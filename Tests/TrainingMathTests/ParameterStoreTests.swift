import Testing

@testable import TrainingMath

/// A store keeps each tensor in its element type, and an update through it is
/// bit for bit the update of a Float64 vector rounded to the layout afterwards.
@Suite struct ParameterStoreTests {
  let layout = [
    TensorSpec(name: "a", count: 3), TensorSpec(name: "h", count: 4, elementType: .float32),
    TensorSpec(name: "b", count: 2), TensorSpec(name: "k", count: 1, elementType: .float32),
  ]

  func values(_ seed: Double) -> [Double] {
    (0..<layout.totalCount).map { index in
      (seed + Double(index) * 0.137).truncatingRemainder(dividingBy: 1.9) - 0.9
    }
  }

  @Test func float32TensorsTakeFourBytesAndReadBackRounded() {
    let raw = values(0.3)
    let store = ParameterStore(layout: layout, values: raw)
    #expect(store.count == 10)
    #expect(store.byteCount == 5 * 8 + 5 * 4)
    var rounded = raw
    layout.roundToElementTypes(&rounded)
    #expect(store.values == rounded)
    #expect(store.values != raw)  // some values were not Floats
    let float64Only = ParameterStore(layout: [TensorSpec(name: "w", count: 3)], values: [1, 2, 3])
    #expect(float64Only.byteCount == 24 && float64Only.values == [1, 2, 3])
  }

  /// Whole gradients, and gradients in parts cut anywhere (across tensors),
  /// with every optimizer, over several steps.
  @Test(arguments: [OptimizerKind.sgd, .momentum, .adam])
  func updatesEqualAFloat64VectorRoundedAfterEachStep(kind: OptimizerKind) throws {
    let settings = try OptimizerSettings(kind: kind, learningRate: 0.05)
    for cuts in [[], [1], [3, 7], [2, 4, 5, 9]] {
      var reference = values(0.3)
      layout.roundToElementTypes(&reference)
      var referenceOptimizer = Optimizer(settings: settings, parameterCount: reference.count)
      var store = ParameterStore(layout: layout, values: reference)
      var optimizer = Optimizer(settings: settings, parameterCount: reference.count)
      for step in 0..<5 {
        let gradient = values(Double(step) * 0.71 + 0.05)
        referenceOptimizer.apply(gradient: gradient, to: &reference)
        layout.roundToElementTypes(&reference)
        if cuts.isEmpty {
          store.apply(&optimizer, gradient: gradient)
        } else {
          let bounds = [0] + cuts + [gradient.count]
          gradient.withUnsafeBufferPointer { all in
            store.apply(&optimizer) { part in
              for index in 0..<(bounds.count - 1) {
                part(
                  bounds[index],
                  UnsafeBufferPointer(rebasing: all[bounds[index]..<bounds[index + 1]]))
              }
            }
          }
        }
        #expect(
          store.values.map(\.bitPattern) == reference.map(\.bitPattern), "\(kind) cut at \(cuts)")
        #expect(optimizer == referenceOptimizer)
      }
    }
  }
}
