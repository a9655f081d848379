import Testing

@testable import TrainingMath

/// The dense networks' audit support: rounding bounds that hold against a
/// Float64 reference, and relu kink detection.
@Suite struct DenseAuditTests {
  /// Outputs and gradient of the BLAS passes lie within their bounds of the
  /// naive Float64 loops (whose own error is at most the Float64 bound, so a
  /// Float64 network is allowed twice its bound), and the magnitude bounds the gradient.
  @Test(arguments: Activation.allCases)
  func boundsCoverTheReference(activation: Activation) {
    forEachLossAndElementType(activation, hidden: [6, 5], seed: 5) { fixture, label in
      let elementType = fixture.network.elementType
      let reference = fixture.naive(at: fixture.weights)
      let gradient = fixture.gradient(at: fixture.weights)
      let network = fixture.network
      let workspace = fixture.workspace
      network.outputErrorBounds(weights: fixture.weights, workspace: workspace)
      var lossBound = 0.0
      network.loss.accumulateErrorBounds(
        workspace: workspace, into: &lossBound, writeGradient: true)
      let bounds = network.gradientErrorBounds(weights: fixture.weights, workspace: workspace)
      let allowance = elementType == .float64 ? 2.0 : 1.0
      for index in reference.outputs.indices {
        let difference = abs(workspace.outputs[index] - reference.outputs[index])
        #expect(difference <= allowance * workspace.outputBounds[index] + 1e-300, "\(label)")
      }
      let scale = gradient.map(abs).max()!
      for index in gradient.indices {
        let difference = abs(gradient[index] - reference.gradient[index])
        #expect(difference <= allowance * bounds.rounding[index] + 1e-300, "\(label) \(index)")
        #expect(abs(gradient[index]) <= bounds.magnitude[index], "\(label) \(index)")
      }
      // Bounds that say something: far below the gradient's size.
      let loosest = bounds.rounding.max()!
      #expect(loosest <= (elementType == .float64 ? 1e-12 : 1e-4) * scale, "\(label)")
    }
  }

  /// The mean loss's bound (worst case) covers the naive Float64 loops' loss
  /// (allowed twice in Float64, whose reference has an error of its own), and
  /// the probabilistic estimate is no larger than the bound (for short dot
  /// products, as here, λ·√n·u exceeds γ(n) and the bound itself serves).
  @Test func lossBoundCoversTheReference() {
    for (activation, loss, elementType) in denseConfigurations {
      let fixture = DenseFixture(
        hidden: [6, 5], activation: activation, loss: loss, elementType: elementType, seed: 8)
      let reference = fixture.naiveMeanLoss(at: fixture.weights)
      let bounded = Objective(model: fixture.network).boundedLoss(
        weights: fixture.weights, workspace: fixture.workspace)
      let allowance = elementType == .float64 ? 2.0 : 1.0
      let label = "\(activation) \(loss) \(elementType)"
      #expect(abs(bounded.value - reference) <= allowance * bounded.bound + 1e-300, "\(label)")
      #expect(bounded.likelyBound <= bounded.bound, "\(label)")
    }
  }

  /// A 2-3-1 relu network whose first hidden unit sits `gap` above its kink
  /// for the one example; the other units are far from theirs.
  func nearKink(gap: Double, activation: Activation = .relu) -> (
    DenseNetwork, [Double], BatchWorkspace
  ) {
    let network = DenseNetwork(
      inputCount: 2, hiddenSizes: [3], outputCount: 1, activation: activation, loss: .squared)
    // layer1.weight [2, 3] row-major, layer1.bias [3], layer2.weight [3, 1], layer2.bias [1].
    let weights: [Double] = [
      0.25, 1, -1,
      0.5, 1, -1,
      -0.5 + gap, 0.5, 0.5,
      1, 1, 1,
      0,
    ]
    let workspace = network.makeWorkspace(batchCapacity: 2)
    workspace.inputs = [1, 0.5, 0, 0]
    workspace.targets = [0, 0]
    workspace.batchSize = 1
    network.forward(weights: weights, workspace: workspace)
    return (network, weights, workspace)
  }

  @Test func stepAcrossAReluKinkIsDetected() {
    let (network, weights, workspace) = nearKink(gap: 1e-7)
    let direction = [Double](repeating: 1, count: network.parameterCount)
    #expect(
      network.mayCrossKink(weights: weights, direction: direction, step: 1e-5, workspace: workspace)
    )
    // A step far shorter than the gap cannot reach the kink.
    #expect(
      !network.mayCrossKink(
        weights: weights, direction: direction, step: 1e-10, workspace: workspace))
    // Moving only the output layer never moves a hidden pre-activation.
    var outputOnly = [Double](repeating: 0, count: network.parameterCount)
    outputOnly[9] = 1
    outputOnly[12] = 1
    #expect(
      !network.mayCrossKink(weights: weights, direction: outputOnly, step: 1, workspace: workspace))
    // And the step really does cross: the unit's sign differs at w ± step·u.
    let plus = zip(weights, direction).map { $0 + 1e-5 * $1 }
    let minus = zip(weights, direction).map { $0 - 1e-5 * $1 }
    let zPlus = 1 * plus[0] + 0.5 * plus[3] + plus[6]
    let zMinus = 1 * minus[0] + 0.5 * minus[3] + minus[6]
    #expect(zPlus > 0 && zMinus < 0)
  }

  /// The check runs its own forward pass: activations another point left in
  /// the workspace do not hide the kink.
  @Test func kinkCheckIgnoresStaleActivations() {
    let (network, weights, workspace) = nearKink(gap: 1e-7)
    network.forward(
      weights: [Double](repeating: 1, count: network.parameterCount), workspace: workspace)
    let direction = [Double](repeating: 1, count: network.parameterCount)
    #expect(
      network.mayCrossKink(
        weights: weights, direction: direction, step: 1e-5, workspace: workspace))
  }

  /// The gradient auditor accepts the dense networks' gradients and, in
  /// Float64, rejects one that is off by 1e-4 (in Float32 the rounding of the
  /// differenced losses hides that much).
  @Test(arguments: Activation.allCases)
  func auditorAcceptsDenseGradients(activation: Activation) {
    forEachLossAndElementType(activation, hidden: [5, 4], seed: 3) { fixture, label in
      let elementType = fixture.network.elementType
      let gradient = fixture.gradient(at: fixture.weights)
      let auditor = GradientAuditor(model: fixture.network)
      let audit = auditor.audit(
        weights: fixture.weights, workspace: fixture.workspace, gradient: gradient, seed: 9)
      #expect(audit.passed, "\(label)")
      // The five-point rule's truncation at the default step, not rounding,
      // limits what a Float64 audit resolves: about 1e-7 relative here.
      if elementType == .float64 {
        #expect(audit.direction.smallestDetectableRelativeError < 1e-6, "\(label)")
      }
      let wrong = gradient.map { $0 * (1 + 1e-4) }
      let caught = auditor.audit(
        weights: fixture.weights, workspace: fixture.workspace, gradient: wrong, seed: 9)
      if elementType == .float64 { #expect(!caught.passed, "\(label)") }
    }
  }

  @Test func smoothActivationsHaveNoKinks() {
    let (network, weights, workspace) = nearKink(gap: 0, activation: .tanh)
    let direction = [Double](repeating: 1, count: network.parameterCount)
    #expect(
      !network.mayCrossKink(weights: weights, direction: direction, step: 1, workspace: workspace))
  }
}
