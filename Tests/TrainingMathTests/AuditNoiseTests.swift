import Testing

@testable import TrainingMath

/// Audits of a converged model (issue 9 item 9): the gradient has shrunk into
/// its own rounding noise, and the audit says how large it was and what it
/// could still have flagged, instead of a meaningless relative error.
struct AuditNoiseTests {
  let model = ChainModel(layers: 3)
  let sample = [Sample(index: 0, x: 1, label: -1)]

  /// Weights one unit in the last place from an exact fit: the residual, and
  /// so the gradient, is about 2e-16.
  var converged: [Double] { [1, 1, (-1.0).nextUp] }

  @Test func aConvergedGradientIsBelowNoiseAndSaysHowSmallItIs() {
    let gradient = Objective(model: model).gradient(weights: converged, samples: sample)
    let audit = GradientAuditor(model: model).audit(
      weights: converged, samples: sample, gradient: gradient, seed: 3)
    #expect(audit.passed)
    #expect(!audit.isConclusive)
    #expect(audit.gradientMagnitude > 1e-17 && audit.gradientMagnitude < 1e-15)
    #expect(audit.gradientMagnitude >= gradient.map(abs).max()!)
    // It could flag only errors far above the tolerance: it measures nothing.
    #expect(
      audit.smallestDetectableRelativeError > 100 * GradientAuditor<ChainModel>.defaultTolerance)
  }

  @Test func aGradientAtTheSeedCanFlagErrorsAtTheTolerance() {
    let gradient = Objective(model: model).gradient(
      weights: ChainModel.seedWeights, samples: sample)
    let audit = GradientAuditor(model: model).audit(
      weights: ChainModel.seedWeights, samples: sample, gradient: gradient, seed: 3)
    #expect(audit.isConclusive)
    let tolerance = GradientAuditor<ChainModel>.defaultTolerance
    #expect(audit.smallestDetectableRelativeError >= tolerance)
    #expect(audit.smallestDetectableRelativeError <= 1.01 * tolerance)
    #expect(audit.gradientMagnitude >= gradient.map(abs).max()!)
  }

  @Test func anExactFitHasNothingToDetect() {
    let exact = [1.0, 1, -1]
    let gradient = Objective(model: model).gradient(weights: exact, samples: sample)
    #expect(gradient.allSatisfy { $0 == 0 })
    let audit = GradientAuditor(model: model).audit(
      weights: exact, samples: sample, gradient: gradient, seed: 3)
    #expect(audit.passed)
    #expect(audit.gradientMagnitude < 1e-15)
  }
}
