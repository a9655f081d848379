import Foundation
import Testing

@testable import TrainingMath

@Suite struct OptimizerTests {
  @Test func momentumFollowsTheHeavyBallRule() throws {
    var optimizer = Optimizer(
      settings: try OptimizerSettings(kind: .momentum, learningRate: 0.1, beta1: 0.5),
      parameterCount: 1)
    var weights = [1.0]
    optimizer.apply(gradient: [2], to: &weights)  // v = 2, w = 1 - 0.2
    #expect(weights == [1 - 0.1 * 2])
    optimizer.apply(gradient: [2], to: &weights)  // v = 0.5*2 + 2 = 3
    #expect(weights == [(1 - 0.1 * 2) - 0.1 * 3])
    #expect(optimizer.step == 2)
  }

  @Test func adamMatchesTheBiasCorrectedFormulas() throws {
    let settings = try OptimizerSettings(kind: .adam, learningRate: 0.01)
    var optimizer = Optimizer(settings: settings, parameterCount: 2)
    var weights = [0.5, -0.5]
    let gradient = [0.3, -0.1]
    optimizer.apply(gradient: gradient, to: &weights)
    // First step: m̂ = g, v̂ = g², so each weight moves by lr·g/(|g| + ε).
    for index in 0..<2 {
      let g = gradient[index]
      let expected = [0.5, -0.5][index] - 0.01 * g / (abs(g) + 1e-8)
      #expect(abs(weights[index] - expected) < 1e-15)
    }
    var manual = weights
    let m = gradient.map { 0.9 * (0.1 * $0) + 0.1 * $0 }
    let v = gradient.map { 0.999 * (0.001 * $0 * $0) + 0.001 * $0 * $0 }
    for index in 0..<2 {
      let mHat = m[index] / (1 - 0.9 * 0.9)
      let vHat = v[index] / (1 - 0.999 * 0.999)
      manual[index] -= 0.01 * mHat / (vHat.squareRoot() + 1e-8)
    }
    optimizer.apply(gradient: gradient, to: &weights)
    for index in 0..<2 { #expect(abs(weights[index] - manual[index]) < 1e-15) }
  }

  @Test func schedulesGiveTheDocumentedRates() throws {
    #expect(LearningRateSchedule.constant.rate(base: 0.05, step: 1000) == 0.05)
    let step = try LearningRateSchedule(parsing: "step:10:0.5")
    #expect(step.rate(base: 1, step: 9) == 1)
    #expect(step.rate(base: 1, step: 10) == 0.5)
    #expect(step.rate(base: 1, step: 35) == 0.125)
    let cosine = try LearningRateSchedule(parsing: "cosine:100:0.1")
    #expect(cosine.rate(base: 1, step: 0) == 1)
    #expect(abs(cosine.rate(base: 1, step: 50) - 0.55) < 1e-15)
    #expect(cosine.rate(base: 1, step: 100) == 0.1)
    #expect(cosine.rate(base: 1, step: 500) == 0.1)
    for bad in ["", "linear", "step:0:0.5", "step:10", "cosine:0", "cosine:10:-1", "step:5:nan"] {
      #expect(throws: TrainingMathError.self, "\(bad)") { try LearningRateSchedule(parsing: bad) }
    }
  }

  @Test func sgdWithAConstantScheduleIsExactlyTheTutorialUpdate() throws {
    var optimizer = try Optimizer(learningRate: 0.05)
    var weights = [0.2333, -0.233, -0.52133]
    let gradient = [0.1249122161434036, -0.12507304732298738, -0.055899372808501456]
    optimizer.apply(gradient: gradient, to: &weights)
    #expect(weights == (0..<3).map { [0.2333, -0.233, -0.52133][$0] - 0.05 * gradient[$0] })
  }

  @Test(arguments: [OptimizerKind.momentum, .adam])
  func everyOptimizerConvergesOnTheSeedData(kind: OptimizerKind) throws {
    let model = ChainModel(layers: 3)
    let objective = Objective(model: model)
    let rate = kind == .adam ? 0.01 : 0.02
    var optimizer = Optimizer(
      settings: try OptimizerSettings(kind: kind, learningRate: rate), parameterCount: 3)
    var weights = ChainModel.seedWeights
    for step in 0..<4000 {
      let sample = Dataset.seed.samples[step % 2]
      optimizer.apply(
        gradient: objective.gradient(weights: weights, samples: [sample]), to: &weights)
    }
    #expect(objective.loss(weights: weights, samples: Dataset.seed.samples) < 1e-3)
  }

  @Test func savedStateMustFitTheKind() throws {
    let settings = try OptimizerSettings(kind: .adam, learningRate: 0.1)
    #expect(throws: TrainingMathError.self) {
      try Optimizer(
        settings: settings, step: 1, firstMoment: [0], secondMoment: [], parameterCount: 1)
    }
    #expect(throws: TrainingMathError.self) {
      try OptimizerSettings(kind: .adam, learningRate: 0.1, beta1: 1)
    }
  }
}

/// `--weight-decay`: 0 changes no bit; L > 0 adds L·w to the gradient (sgd,
/// momentum) or shrinks the weight by lr·L·w beside Adam's step.
@Suite struct WeightDecayTests {
  static let gradients: [[Double]] = [[0.3, -0.1, 2.5], [-0.7, 0.2, 0.01], [0.05, 1.5, -0.4]]
  static let start = [0.5, -0.25, 1.75]

  func run(_ settings: OptimizerSettings) -> [Double] {
    var optimizer = Optimizer(settings: settings, parameterCount: 3)
    var weights = Self.start
    for gradient in Self.gradients { optimizer.apply(gradient: gradient, to: &weights) }
    return weights
  }

  @Test(arguments: OptimizerKind.allCases)
  func aDecayOfZeroChangesNoBit(kind: OptimizerKind) throws {
    let plain = try OptimizerSettings(kind: kind, learningRate: 0.05)
    let zero = try OptimizerSettings(kind: kind, learningRate: 0.05, weightDecay: 0)
    #expect(zero == plain)
    // The update of old, by hand: the same bits.
    var weights = Self.start
    var m = [0.0, 0.0, 0.0]
    var v = [0.0, 0.0, 0.0]
    for (step, g) in Self.gradients.enumerated() {
      for i in 0..<3 {
        switch kind {
        case .sgd: weights[i] = weights[i] - 0.05 * g[i]
        case .momentum:
          m[i] = 0.9 * m[i] + g[i]
          weights[i] = weights[i] - 0.05 * m[i]
        case .adam:
          m[i] = 0.9 * m[i] + (1 - 0.9) * g[i]
          v[i] = 0.999 * v[i] + (1 - 0.999) * g[i] * g[i]
          let t = Double(step + 1)
          let mHat = m[i] / (1 - pow(0.9, t))
          let vHat = v[i] / (1 - pow(0.999, t))
          weights[i] = weights[i] - 0.05 * mHat / (vHat.squareRoot() + 1e-8)
        }
      }
    }
    #expect(run(zero) == weights)
  }

  @Test(arguments: OptimizerKind.allCases)
  func aDecayMatchesAHandComputation(kind: OptimizerKind) throws {
    let decay = 0.01
    let settings = try OptimizerSettings(kind: kind, learningRate: 0.05, weightDecay: decay)
    var weights = Self.start
    var m = [0.0, 0.0, 0.0]
    var v = [0.0, 0.0, 0.0]
    for (step, g) in Self.gradients.enumerated() {
      for i in 0..<3 {
        switch kind {
        case .sgd: weights[i] = weights[i] - 0.05 * (g[i] + decay * weights[i])
        case .momentum:
          m[i] = 0.9 * m[i] + (g[i] + decay * weights[i])
          weights[i] = weights[i] - 0.05 * m[i]
        case .adam:
          m[i] = 0.9 * m[i] + (1 - 0.9) * g[i]
          v[i] = 0.999 * v[i] + (1 - 0.999) * g[i] * g[i]
          let t = Double(step + 1)
          let mHat = m[i] / (1 - pow(0.9, t))
          let vHat = v[i] / (1 - pow(0.999, t))
          weights[i] =
            (weights[i] - 0.05 * decay * weights[i]) - 0.05 * mHat / (vHat.squareRoot() + 1e-8)
        }
      }
    }
    #expect(run(settings) == weights)
    #expect(run(settings) != run(try OptimizerSettings(kind: kind, learningRate: 0.05)))
  }

  @Test func aNegativeOrInfiniteDecayIsRefused() {
    for bad in [-1e-4, .infinity, .nan] {
      #expect(throws: TrainingMathError.self, "\(bad)") {
        try OptimizerSettings(learningRate: 0.05, weightDecay: bad)
      }
    }
  }
}
