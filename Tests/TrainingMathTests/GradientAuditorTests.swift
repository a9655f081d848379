import Testing

@testable import TrainingMath

@Suite struct GradientAuditorTests {
  let model = ChainModel(layers: 3)
  let first = [Sample(index: 0, x: 1, label: -1)]

  @Test func relativeErrorDefinition() {
    #expect(relativeError(0, 0) == 0)
    #expect(relativeError(1, 0) == 1)
    #expect(relativeError(2, 1) == 0.5)
    #expect(relativeError(-1, 1) == 2)
  }

  @Test func correctGradientAtTheSeedPassesConclusively() {
    let auditor = GradientAuditor(model: model)
    let gradient = Objective(model: model).gradient(weights: ChainModel.seedWeights, samples: first)
    let audit = auditor.audit(
      weights: ChainModel.seedWeights, samples: first, gradient: gradient, seed: 1)
    #expect(audit.passed)
    #expect(audit.isConclusive)
    #expect(audit.coordinates.count == 3)
    #expect(audit.maximumRelativeError < 1e-10)
  }

  @Test(arguments: [1 + 1e-6, 1 - 1e-6, 1.001, 0.5, -1])
  func scaledGradientIsFlagged(scale: Double) {
    let auditor = GradientAuditor(model: model)
    let gradient = Objective(model: model).gradient(weights: ChainModel.seedWeights, samples: first)
      .map { $0 * scale }
    let audit = auditor.audit(
      weights: ChainModel.seedWeights, samples: first, gradient: gradient, seed: 7)
    #expect(!audit.passed)
  }

  @Test(arguments: [0, 1, 2])
  func flippedCoordinateIsFlagged(coordinate: Int) {
    let auditor = GradientAuditor(model: model)
    var gradient = Objective(model: model).gradient(weights: ChainModel.seedWeights, samples: first)
    gradient[coordinate] = -gradient[coordinate]
    let audit = auditor.audit(
      weights: ChainModel.seedWeights, samples: first, gradient: gradient, seed: 3)
    #expect(!audit.passed)
    #expect(!audit.coordinates[coordinate].passed)
  }

  /// The auditor must never flag a correct gradient: not at random points, not
  /// near a minimum where the gradient sinks into rounding noise, not in deep chains.
  @Test(arguments: [1, 3, 8, 40])
  func correctGradientsAreNeverFlagged(layers: Int) throws {
    let model = ChainModel(layers: layers)
    let objective = Objective(model: model)
    let auditor = GradientAuditor(model: model)
    var generator = SplitMix64(seed: 42 + UInt64(layers))
    for trial in 0..<300 {
      var weights = (0..<layers).map { _ in 0.8 + 0.4 * generator.nextUnit() }
      weights[0] *= generator.nextUnit() < 0.5 ? -1 : 1
      let x = 2 * generator.nextUnit() - 1
      let e = model.predict(weights: weights, input: x)
      // A third of the trials sit almost at the minimum (label = e up to 1e-k).
      let label: Double
      switch trial % 3 {
      case 0: label = generator.nextGaussian()
      case 1: label = e + 1e-6 * generator.nextGaussian()
      default: label = e * (1 + 1e-15 * Double(trial % 7))
      }
      let samples = [Sample(index: 0, x: x, label: label)]
      let gradient = objective.gradient(weights: weights, samples: samples)
      let audit = auditor.audit(
        weights: weights, samples: samples, gradient: gradient, seed: UInt64(trial))
      #expect(audit.passed, "trial \(trial): \(audit.comparisons.filter { !$0.passed })")
    }
  }

  @Test func trainingTrajectoryOfTheSeedIsNeverFlaggedAndStaysPrecise() throws {
    let objective = Objective(model: model)
    let auditor = GradientAuditor(model: model)
    var sgd = try Optimizer(learningRate: 0.05)
    var weights = ChainModel.seedWeights
    var worst = 0.0
    for step in 0..<1000 {
      let sample = Dataset.seed.samples[step % 2]
      let gradient = objective.gradient(weights: weights, samples: [sample])
      let audit = auditor.audit(
        weights: weights, samples: [sample], gradient: gradient, seed: UInt64(step))
      #expect(audit.passed, "step \(step)")
      worst = max(worst, audit.maximumRelativeError)
      sgd.apply(gradient: gradient, to: &weights)
    }
    #expect(worst <= 1e-9)
  }

  @Test func directionalCheckAloneCatchesACorruptedCoordinateOfALongChain() {
    let model = ChainModel(layers: 200)
    let objective = Objective(model: model)
    let auditor = GradientAuditor(model: model, maximumCoordinates: 4)
    let weights = (0..<200).map { index in index == 199 ? -0.99 : 1.0 + 1e-3 * Double(index % 5) }
    let samples = [Sample(index: 0, x: 0.3, label: -1)]
    var gradient = objective.gradient(weights: weights, samples: samples)
    gradient[123] = -gradient[123]
    let audit = auditor.audit(weights: weights, samples: samples, gradient: gradient, seed: 5)
    #expect(audit.coordinates.count == 4)
    #expect(!audit.direction.passed)
  }

  @Test func auditIsRepeatableForTheSameSeed() {
    let auditor = GradientAuditor(model: model)
    let gradient = Objective(model: model).gradient(weights: ChainModel.seedWeights, samples: first)
    let a = auditor.audit(
      weights: ChainModel.seedWeights, samples: first, gradient: gradient, seed: 9)
    let b = auditor.audit(
      weights: ChainModel.seedWeights, samples: first, gradient: gradient, seed: 9)
    #expect(a == b)
  }
}
