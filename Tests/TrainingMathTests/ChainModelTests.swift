import Testing

@testable import TrainingMath

@Suite struct ChainModelTests {
  func randomWeights(_ count: Int, _ generator: inout SplitMix64) -> [Double] {
    (0..<count).map { _ in 0.5 + generator.nextUnit() }.enumerated().map { index, value in
      index % 3 == 1 ? -value : value
    }
  }

  @Test(arguments: [1, 2, 3, 10, 57, 300])
  func naiveAndCachedBackpropAgreeBitForBit(layers: Int) {
    let model = ChainModel(layers: layers)
    let objective = Objective(model: model)
    var generator = SplitMix64(seed: UInt64(layers))
    for _ in 0..<20 {
      let weights = randomWeights(layers, &generator)
      let samples = [
        Sample(index: 0, x: 2 * generator.nextUnit() - 1, label: generator.nextGaussian())
      ]
      var cached = [Double](repeating: 0, count: layers)
      var naive = [Double](repeating: 0, count: layers)
      let cachedLoss = objective.gradient(weights: weights, samples: samples, into: &cached)
      // The naive chain rule on the same example, with the same output gradient.
      var activations = model.makeActivations()
      let e = model.forward(weights: weights, input: samples[0].x, activations: &activations)
      model.naiveBackward(
        weights: weights, activations: activations,
        outputGradient: SquaredErrorLoss.derivative(prediction: e, label: samples[0].label),
        gradient: &naive)
      #expect(cached == naive)
      #expect(cachedLoss == SquaredErrorLoss.value(prediction: e, label: samples[0].label))
    }
  }

  @Test func forwardCachesEveryActivation() {
    let model = ChainModel(layers: 3)
    var activations = model.makeActivations()
    let e = model.forward(weights: [2, 3, 5], input: 7, activations: &activations)
    #expect(activations == [7, 14, 42, 210])
    #expect(e == 210)
  }

  @Test func gradientMatchesHandDerivation() {
    // e = w3 w2 w1 x; dL/dw1 = (e - t) w3 w2 x, etc.
    let objective = Objective(model: ChainModel(layers: 3))
    let gradient = objective.gradient(
      weights: [2, 3, 5], samples: [Sample(index: 0, x: 1, label: 4)])
    let r = 30.0 - 4.0
    #expect(gradient == [r * 15, r * 10, r * 6])
  }

  @Test func batchGradientIsTheMeanOfSampleGradients() {
    let objective = Objective(model: ChainModel(layers: 3))
    let weights = [0.7, -1.1, 0.9]
    let a = Sample(index: 0, x: 0.5, label: 0.25)
    let b = Sample(index: 1, x: -0.75, label: 1)
    let ga = objective.gradient(weights: weights, samples: [a])
    let gb = objective.gradient(weights: weights, samples: [b])
    let both = objective.gradient(weights: weights, samples: [a, b])
    for index in 0..<3 { #expect(both[index] == (ga[index] + gb[index]) / 2) }
    #expect(
      objective.loss(weights: weights, samples: [a, b])
        == (objective.loss(weights: weights, samples: [a])
          + objective.loss(weights: weights, samples: [b])) / 2)
  }

  @Test func initialWeightsOfOtherDepthsStartAwayFromTheSaddle() {
    let weights = ChainModel(layers: 10).initialWeights()
    #expect(weights.count == 10)
    #expect(weights.reduce(1, *) == -0.5)
  }

  @Test func sgdStepsAgainstTheGradient() throws {
    var weights = [1.0, 2.0]
    var step1 = try Optimizer(learningRate: 0.5)
    step1.apply(gradient: [2, -4], to: &weights)
    #expect(weights == [0, 4])
    #expect(throws: TrainingMathError.invalidLearningRate(0)) { try Optimizer(learningRate: 0) }
    #expect(throws: TrainingMathError.self) { try Optimizer(learningRate: .nan) }
  }
}
