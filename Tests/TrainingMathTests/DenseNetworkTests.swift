import Testing

@testable import TrainingMath

/// A small network and a batch of random inputs and targets in a workspace
/// with room for more rows than the batch uses (those rows hold garbage).
struct DenseFixture {
  let network: DenseNetwork
  let workspace: BatchWorkspace
  let weights: [Double]

  init(
    hidden: [Int], activation: Activation, loss: LossKind, elementType: ElementType = .float64,
    inputs: Int = 4, outputs: Int? = nil, batch: Int = 5, capacity: Int = 8, seed: UInt64 = 7
  ) {
    // Squared error takes one output per example; cross-entropy three classes.
    let outputs = outputs ?? (loss == .squared ? 1 : 3)
    network = DenseNetwork(
      inputCount: inputs, hiddenSizes: hidden, outputCount: outputs, activation: activation,
      loss: loss, elementType: elementType)
    workspace = network.makeWorkspace(batchCapacity: capacity)
    var generator = SplitMix64(seed: seed)
    for index in workspace.inputs.indices {
      workspace.inputs[index] = index < batch * inputs ? 2 * generator.nextUnit() - 1 : .nan
    }
    for example in 0..<capacity {
      workspace.targets[example] =
        loss == .crossEntropy
        ? Double(generator.next() % UInt64(outputs)) : generator.nextGaussian()
    }
    if elementType == .float32 {
      for index in workspace.inputs.indices {
        workspace.inputs[index] = Double(Float(workspace.inputs[index]))
      }
    }
    workspace.batchSize = batch
    var weights = network.initialWeights(seed: seed)
    // Non-zero biases, so that their gradients and their path through the passes count.
    var offset = 0
    for spec in network.layout {
      if spec.name.hasSuffix(".bias") {
        for index in offset..<(offset + spec.count) {
          weights[index] = 0.1 * generator.nextGaussian()
        }
      }
      offset += spec.count
    }
    network.layout.roundToElementTypes(&weights)
    self.weights = weights
  }

  /// The batch's mean loss at `weights`, through the BLAS passes.
  func meanLoss(at weights: [Double]) -> Double {
    network.forward(weights: weights, workspace: workspace)
    var total = 0.0
    network.loss.accumulate(workspace: workspace, into: &total, writeGradient: false)
    return total / Double(workspace.batchSize)
  }

  /// The batch's mean loss at `weights`, through the naive Float64 loops.
  func naiveMeanLoss(at weights: [Double]) -> Double {
    _ = network.naiveForward(weights: weights, workspace: workspace)
    var total = 0.0
    network.loss.accumulate(workspace: workspace, into: &total, writeGradient: false)
    return total / Double(workspace.batchSize)
  }

  /// The gradient through the BLAS passes.
  func gradient(at weights: [Double]) -> [Double] {
    network.forward(weights: weights, workspace: workspace)
    var total = 0.0
    network.loss.accumulate(workspace: workspace, into: &total, writeGradient: true)
    var gradient = [Double](repeating: .nan, count: network.parameterCount)
    network.backward(weights: weights, workspace: workspace, gradient: &gradient)
    return gradient
  }

  /// Outputs and gradient through the naive loops.
  func naive(at weights: [Double]) -> (outputs: [Double], gradient: [Double]) {
    let activations = network.naiveForward(weights: weights, workspace: workspace)
    let outputs = Array(workspace.outputs[0..<(workspace.batchSize * network.outputCount)])
    var total = 0.0
    network.loss.accumulate(workspace: workspace, into: &total, writeGradient: true)
    var gradient = [Double](repeating: .nan, count: network.parameterCount)
    network.naiveBackward(
      weights: weights, workspace: workspace, activations: activations, gradient: &gradient)
    return (outputs, gradient)
  }
}

/// For `activation`, a fixture of every loss and element type with these
/// hidden layers and seed, and a label naming the configuration.
func forEachLossAndElementType(
  _ activation: Activation, hidden: [Int], seed: UInt64, _ body: (DenseFixture, String) -> Void
) {
  for loss in LossKind.allCases {
    for elementType in ElementType.allCases {
      let fixture = DenseFixture(
        hidden: hidden, activation: activation, loss: loss, elementType: elementType, seed: seed)
      body(fixture, "\(activation) \(loss) \(elementType)")
    }
  }
}

/// Every configuration the tests run through: activation × loss × element type.
let denseConfigurations: [(Activation, LossKind, ElementType)] = Activation.allCases.flatMap {
  activation in
  LossKind.allCases.flatMap { loss in ElementType.allCases.map { (activation, loss, $0) } }
}

@Suite struct DenseNetworkTests {
  @Test func namesAndLayout() {
    let linear = DenseNetwork(
      inputCount: 3, hiddenSizes: [], outputCount: 1, activation: .relu, loss: .squared)
    #expect(linear.name == "linear")
    #expect(
      linear.layout == [
        TensorSpec(name: "layer1.weight", shape: [3, 1]),
        TensorSpec(name: "layer1.bias", shape: [1]),
      ])
    let softmax = DenseNetwork(
      inputCount: 3, hiddenSizes: [], outputCount: 4, activation: .tanh, loss: .crossEntropy,
      elementType: .float32)
    #expect(softmax.name == "softmax")
    #expect(softmax.layout.map(\.elementType) == [.float32, .float32])
    let mlp = DenseNetwork(
      inputCount: 784, hiddenSizes: [256, 64], outputCount: 10, activation: .sigmoid,
      loss: .crossEntropy)
    #expect(mlp.name == "mlp.sigmoid")
    #expect(
      mlp.layout.map(\.name) == [
        "layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias", "layer3.weight",
        "layer3.bias",
      ])
    #expect(mlp.layout.map(\.shape) == [[784, 256], [256], [256, 64], [64], [64, 10], [10]])
    #expect(mlp.parameterCount == 785 * 256 + 257 * 64 + 65 * 10)
    #expect(mlp.layout.allSatisfy { TensorSpec.isValidName($0.name) })
    let squared = DenseNetwork(
      inputCount: 2, hiddenSizes: [5], outputCount: 1, activation: .relu, loss: .squared)
    #expect(squared.name == "mlp.relu.squared")
    #expect(TensorSpec.isValidName(squared.name) && TensorSpec.isValidName(mlp.name))
    #expect(Activation(parsing: "tanh") == .tanh && Activation(parsing: "gelu") == nil)
    #expect(squared.loss.name == "squared" && mlp.loss.name == "cross-entropy")
  }

  /// Every network comes back from its wire name and layout; other names and
  /// layouts that do not chain are refused.
  @Test func wireNameAndLayoutRebuildTheNetwork() throws {
    for (activation, loss, elementType) in denseConfigurations {
      for hidden in [[], [5], [5, 3]] {
        let network = DenseNetwork(
          inputCount: 4, hiddenSizes: hidden, outputCount: loss == .squared ? 1 : 3,
          activation: activation, loss: loss, elementType: elementType)
        #expect(DenseNetwork.isWireName(network.name))
        #expect(try DenseNetwork(named: network.name, layout: network.layout) == network)
      }
    }
    let mlp = DenseNetwork(
      inputCount: 4, hiddenSizes: [5], outputCount: 3, activation: .tanh, loss: .crossEntropy)
    #expect(!DenseNetwork.isWireName("chain") && !DenseNetwork.isWireName("mlp.gelu"))
    #expect(throws: TrainingMathError.self) {
      try DenseNetwork(named: "linear", layout: mlp.layout)
    }
    var broken = mlp.layout
    broken[2] = TensorSpec(name: "layer2.weight", shape: [4, 3])
    #expect(throws: TrainingMathError.self) { try DenseNetwork(named: "mlp.tanh", layout: broken) }
  }

  @Test func initialWeightsAreDeterministic() {
    for activation in Activation.allCases {
      for elementType in ElementType.allCases {
        let network = DenseNetwork(
          inputCount: 20, hiddenSizes: [30], outputCount: 5, activation: activation,
          loss: .crossEntropy, elementType: elementType)
        let first = network.initialWeights(seed: 42)
        #expect(first == network.initialWeights(seed: 42))
        #expect(first != network.initialWeights(seed: 43))
        #expect(
          first.allSatisfy { $0.isFinite && Double(Float($0)) == $0 || elementType == .float64 })
        // Biases start at 0; weights are spread out and centred.
        let weights = first[0..<600]
        #expect(first[600..<630].allSatisfy { $0 == 0 } && first[780..<785].allSatisfy { $0 == 0 })
        let mean = weights.reduce(0, +) / 600
        let spread = (weights.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 600).squareRoot()
        let expected = activation == .relu ? (2.0 / 20).squareRoot() : (2.0 / 50).squareRoot()
        #expect(abs(mean) < 0.1 * expected && abs(spread / expected - 1) < 0.15)
      }
    }
  }

  /// The BLAS passes agree with the naive loops, for a batch smaller than the
  /// capacity, within the rounding of the element type.
  @Test(arguments: [[], [6], [6, 5]])
  func blasPassesMatchNaiveLoops(hidden: [Int]) {
    for (activation, loss, elementType) in denseConfigurations {
      let fixture = DenseFixture(
        hidden: hidden, activation: activation, loss: loss, elementType: elementType)
      let gradient = fixture.gradient(at: fixture.weights)
      let outputs = Array(fixture.workspace.outputs[0..<(5 * fixture.network.outputCount)])
      let naive = fixture.naive(at: fixture.weights)
      let tolerance = elementType == .float64 ? 1e-13 : 1e-5
      let outputScale = naive.outputs.map(abs).max()!
      let gradientScale = naive.gradient.map(abs).max()!
      for (blas, reference) in zip(outputs, naive.outputs) {
        #expect(
          abs(blas - reference) <= tolerance * outputScale, "\(activation) \(loss) \(elementType)")
      }
      for (blas, reference) in zip(gradient, naive.gradient) {
        #expect(
          abs(blas - reference) <= tolerance * gradientScale, "\(activation) \(loss) \(elementType)"
        )
      }
    }
  }

  /// Float32 layers wider than one band (`DenseBuffers.floatBand` fan-in
  /// rows) run as several products and conversions; twice in a row, so the
  /// gradient band must have been left zero.
  @Test func widePassesInBandsMatchNaiveLoops() {
    let wide = DenseBuffers.floatBand * 2 + 44
    let fixture = DenseFixture(
      hidden: [DenseBuffers.floatBand + 12], activation: .tanh, loss: .crossEntropy,
      elementType: .float32, inputs: wide)
    let naive = fixture.naive(at: fixture.weights)
    _ = fixture.gradient(at: fixture.weights)
    let gradient = fixture.gradient(at: fixture.weights)
    let scale = naive.gradient.map(abs).max()!
    for (blas, reference) in zip(gradient, naive.gradient) {
      #expect(abs(blas - reference) <= 1e-5 * scale)
    }
    let outputs = Array(fixture.workspace.outputs[0..<(5 * 3)])
    let outputScale = naive.outputs.map(abs).max()!
    for (blas, reference) in zip(outputs, naive.outputs) {
      #expect(abs(blas - reference) <= 1e-5 * outputScale)
    }
  }

  /// The gradient matches central differences of the mean loss on every
  /// coordinate; differences are of the naive Float64 loss, so that Float32
  /// networks are checked against the function they round.
  @Test(arguments: Activation.allCases)
  func gradientMatchesCentralDifferences(activation: Activation) {
    forEachLossAndElementType(activation, hidden: [5, 4], seed: 11) { fixture, label in
      let elementType = fixture.network.elementType
      let gradient = fixture.gradient(at: fixture.weights)
      if activation == .relu {
        let direction = [Double](repeating: 1, count: fixture.network.parameterCount)
        #expect(
          !fixture.network.mayCrossKink(
            weights: fixture.weights, direction: direction, step: 1e-5,
            workspace: fixture.workspace))
      }
      let step = 1e-6
      let tolerance = elementType == .float64 ? 1e-7 : 2e-5
      let scale = gradient.map(abs).max()!
      for index in fixture.weights.indices {
        var plus = fixture.weights
        var minus = fixture.weights
        plus[index] += step
        minus[index] -= step
        let numeric =
          (fixture.naiveMeanLoss(at: plus) - fixture.naiveMeanLoss(at: minus)) / (2 * step)
        #expect(
          abs(gradient[index] - numeric) <= tolerance * max(scale, 1),
          "\(label) parameter \(index)")
      }
    }
  }

  /// A full batch and then a smaller one in the same workspace give what a
  /// workspace sized for the smaller batch does.
  @Test func smallerBatchAfterFullOne() {
    for elementType in ElementType.allCases {
      let fixture = DenseFixture(
        hidden: [7], activation: .tanh, loss: .crossEntropy, elementType: elementType, batch: 8)
      _ = fixture.gradient(at: fixture.weights)
      fixture.workspace.batchSize = 3
      let small = fixture.gradient(at: fixture.weights)
      let smallOutputs = Array(fixture.workspace.outputs[0..<9])
      let exact = fixture.network.makeWorkspace(batchCapacity: 3)
      exact.inputs = Array(fixture.workspace.inputs[0..<12])
      exact.targets = Array(fixture.workspace.targets[0..<3])
      exact.batchSize = 3
      fixture.network.forward(weights: fixture.weights, workspace: exact)
      var total = 0.0
      fixture.network.loss.accumulate(workspace: exact, into: &total, writeGradient: true)
      var gradient = [Double](repeating: 0, count: fixture.network.parameterCount)
      fixture.network.backward(weights: fixture.weights, workspace: exact, gradient: &gradient)
      #expect(exact.outputs == smallOutputs)
      #expect(small == gradient)
    }
  }

  /// Stable log-softmax: logits far apart give a finite loss and gradient.
  @Test func crossEntropyOnHugeLogitsStaysFinite() {
    let workspace = BatchWorkspace(batchCapacity: 2, inputCount: 1, outputCount: 3)
    workspace.batchSize = 2
    workspace.outputs = [1000, 0, -1000, 800, 800, -5000]
    workspace.targets = [2, 1]
    var total = 0.0
    let loss = SoftmaxCrossEntropyLoss()
    loss.accumulate(workspace: workspace, into: &total, writeGradient: true)
    #expect(total.isFinite && abs(total - (2000 + 0.6931471805599453)) < 1e-9)
    #expect(workspace.outputGradient.allSatisfy { $0.isFinite })
    #expect(workspace.outputGradient[0] == 1 && workspace.outputGradient[2] == -1)
    #expect(abs(workspace.outputGradient[4] + 0.5) < 1e-15)
    var bound = 0.0
    loss.accumulateErrorBounds(workspace: workspace, into: &bound, writeGradient: true)
    #expect(bound.isFinite && bound < 1e-9)
    #expect(workspace.outputGradientBounds.allSatisfy { $0.isFinite && $0 < 1e-12 })
  }
}
