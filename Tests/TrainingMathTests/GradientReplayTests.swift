import Testing

@testable import TrainingMath

/// A model to replay and data it reads.
struct ReplayCase: CustomStringConvertible, Sendable {
  var model: AnyDifferentiableModel
  var dataset: Dataset

  var description: String { "\(model.name) \(model.layout.first!.elementType)" }

  /// Every model kind this build computes, in both element types, on generated data.
  static let all: [ReplayCase] = {
    let regression = try! Dataset.generate(rows: 64, seed: 7)
    let classes = try! Dataset.generateClassification(features: 8, classes: 4, rows: 64, seed: 7)
    var cases: [ReplayCase] = []
    for elementType in ElementType.allCases {
      let specs: [(ModelSpec, Dataset)] = [
        (try! ModelSpec(parsing: "chain"), regression),
        (try! ModelSpec(parsing: "linear"), classes),
        (try! ModelSpec(parsing: "softmax"), classes),
        (try! ModelSpec(parsing: "mlp:16", activation: .relu), classes),
        (try! ModelSpec(parsing: "mlp:16,8", activation: .tanh), classes),
        (try! ModelSpec(parsing: "mlp:8", activation: .sigmoid, squaredLoss: true), classes),
      ]
      for (spec, data) in specs {
        let model = try! spec.model(
          features: data.featureCount, classes: 4, elementType: elementType)
        cases.append(ReplayCase(model: model, dataset: data))
      }
    }
    return cases
  }()
}

/// The gradient as a worker pushes it: computed in a workspace of the worker's
/// batch capacity, then rounded to the layout's element types by the wire.
func workerGradient(
  _ model: AnyDifferentiableModel, weights: [Double], rows: [Int], dataset: Dataset,
  capacity: Int
) -> [Double] {
  let workspace = model.makeWorkspace(batchCapacity: capacity)
  workspace.load(rows: rows, of: dataset)
  var gradient = [Double](repeating: 0, count: model.parameterCount)
  Objective(model: model).gradient(weights: weights, workspace: workspace, into: &gradient)
  model.layout.roundToElementTypes(&gradient)
  return gradient
}

@Suite struct GradientReplayTests {
  /// A worker's gradient and the replay's are the same bits, for a full batch
  /// and for a short last batch computed in the worker's larger workspace.
  @Test(arguments: ReplayCase.all)
  func replayIsBitIdenticalToTheWorker(_ replayCase: ReplayCase) {
    let model = replayCase.model
    var weights = model.initialWeights(seed: 3)
    model.layout.roundToElementTypes(&weights)
    let replay = GradientReplay(model: model)
    let rounding = GradientReplay(model: model, mode: .rounding)
    var generator = SplitMix64(seed: 11)
    // Many pushes along a short SGD run, so the weights move.
    for step in 0..<40 {
      let size = step % 4 == 3 ? 5 : 16  // every fourth batch is a short last one
      let rows = (0..<size).map { _ in Int(generator.next() % UInt64(replayCase.dataset.count)) }
      let pushed = workerGradient(
        model, weights: weights, rows: rows, dataset: replayCase.dataset, capacity: 16)
      let result = replay.replay(
        weights: weights, dataset: replayCase.dataset, rows: rows, gradient: pushed)
      #expect(result.passed, "\(replayCase) step \(step): \(result)")
      #expect(result.differingCount == 0)
      #expect(
        rounding.replay(
          weights: weights, dataset: replayCase.dataset, rows: rows, gradient: pushed
        ).passed)
      for index in weights.indices { weights[index] -= 0.05 * pushed[index] }
      model.layout.roundToElementTypes(&weights)
    }
  }

  /// Rounding mode allows what two computations may differ by, and no more.
  @Test func roundingModeAllowsRoundingOnly() {
    let replayCase = ReplayCase.all.first { $0.model.name == "mlp.relu" }!
    let model = replayCase.model
    let weights = model.initialWeights(seed: 5)
    let rows = Array(0..<16)
    let pushed = workerGradient(
      model, weights: weights, rows: rows, dataset: replayCase.dataset, capacity: 16)
    let workspace = model.makeWorkspace(batchCapacity: 16)
    workspace.load(rows: rows, of: replayCase.dataset)
    let bounds = Objective(model: model).gradientBounds(weights: weights, workspace: workspace)
    let largest = pushed.indices.max { abs(pushed[$0]) < abs(pushed[$1]) }!
    let replay = GradientReplay(model: model, mode: .rounding)
    var nudged = pushed
    nudged[largest] += bounds.rounding[largest]  // within one computation's bound
    #expect(
      replay.replay(weights: weights, dataset: replayCase.dataset, rows: rows, gradient: nudged)
        .passed)
    #expect(
      !GradientReplay(model: model).replay(
        weights: weights, dataset: replayCase.dataset, rows: rows, gradient: nudged
      ).passed)
    var wrong = pushed
    wrong[largest] *= 1 + 1e-9  // far beyond ~1e-14 relative
    let caught = replay.replay(
      weights: weights, dataset: replayCase.dataset, rows: rows, gradient: wrong)
    #expect(!caught.passed)
    #expect(caught.first?.index == largest)
  }

  /// The comparison names the first and the worst coordinate by tensor and index.
  @Test func comparisonNamesCoordinates() {
    let layout = [
      TensorSpec(name: "layer1.weight", count: 4), TensorSpec(name: "layer1.bias", count: 2),
    ]
    let replayed: [Double] = [1, 2, 3, 4, 5, 6]
    var pushed = replayed
    pushed[2] = 3.5
    pushed[5] = -6
    pushed[0] = .nan
    let result = GradientReplay<ChainModel>.compare(
      pushed: pushed, replayed: replayed, layout: layout, allowed: nil, mode: .exact)
    #expect(result.differingCount == 3 && result.mismatchCount == 3)
    #expect(result.first?.label == "layer1.weight[0]")
    #expect(result.worst?.label == "layer1.weight[0]")  // a NaN is infinitely far
    #expect(result.largestDifference == .infinity)
    let tolerant = GradientReplay<ChainModel>.compare(
      pushed: [1, 2.5, 3, 4, 5, -6], replayed: replayed, layout: layout,
      allowed: [0, 1, 0, 0, 0, 1], mode: .rounding)
    #expect(tolerant.differingCount == 2 && tolerant.mismatchCount == 1)
    #expect(tolerant.first?.label == "layer1.bias[1]")
    #expect(tolerant.worst?.label == "layer1.bias[1]" && tolerant.largestDifference == 12)
  }
}
