import Foundation
import Testing

@testable import TrainingMath

/// What the audits along a training run found.
struct AuditTally: CustomStringConvertible {
  /// Audits of correct gradients, and how they came out.
  var audits = 0
  var failed = 0
  var conclusive = 0
  /// Comparisons of correct gradients, and those skipped at a kink.
  var comparisons = 0
  var kinkSkipped = 0
  /// Largest relative error among conclusive comparisons of correct gradients.
  var maximumRelativeError = 0.0
  /// Gradients scaled by 1 + 1e-6, and how many audits flagged them.
  var scaledTried = 0
  var scaledCaught = 0
  /// Gradients with one of the 10 largest coordinates negated, and how many were flagged.
  var flippedTried = 0
  var flippedCaught = 0

  mutating func add(_ other: AuditTally) {
    audits += other.audits
    failed += other.failed
    conclusive += other.conclusive
    comparisons += other.comparisons
    kinkSkipped += other.kinkSkipped
    maximumRelativeError = max(maximumRelativeError, other.maximumRelativeError)
    scaledTried += other.scaledTried
    scaledCaught += other.scaledCaught
    flippedTried += other.flippedTried
    flippedCaught += other.flippedCaught
  }

  var description: String {
    "\(audits) audits: \(failed) failed, \(conclusive) conclusive"
      + " (\(String(format: "%.1f", 100 * Double(conclusive) / Double(max(audits, 1))))%),"
      + " \(kinkSkipped) of \(comparisons) comparisons skipped at a kink,"
      + " max conclusive rel err \(String(format: "%.2e", maximumRelativeError));"
      + " scale 1+1e-6 caught \(scaledCaught)/\(scaledTried),"
      + " top-10 flip caught \(flippedCaught)/\(flippedTried)"
  }
}

/// Trains `network` with plain SGD on seeded random batches of `dataset` for
/// `steps` steps and audits the gradient of every `auditEvery`-th step; with
/// `faults`, every `faultEvery`-th audited step also a copy scaled by 1 + 1e-6 and one with its
/// (step mod 10)-th largest coordinate negated. Float32 networks' gradients
/// are rounded to Float as they would travel, and audited as the coordinator does.
func trainAndAudit(
  network: DenseNetwork, dataset: Dataset, batchSize: Int, learningRate: Double, steps: Int,
  seed: UInt64, auditEvery: Int = 1, faults: Bool = true, faultEvery: Int = 1,
  maximumCoordinates: Int? = nil,
  step: Double? = nil
) -> AuditTally {
  let objective = Objective(model: network)
  let float32 = network.elementType == .float32
  let auditor = GradientAuditor(
    model: network, step: step,
    maximumCoordinates: maximumCoordinates
      ?? GradientAuditor<DenseNetwork>
      .defaultMaximumCoordinates,
    gradientRounding: float32 ? ElementType.float32.unitRoundoff : 0)
  let workspace = network.makeWorkspace(batchCapacity: batchSize)
  var weights = network.initialWeights(seed: seed)
  var generator = SplitMix64(seed: seed ^ 0x5eed)
  var gradient = [Double](repeating: 0, count: network.parameterCount)
  var tally = AuditTally()
  for step in 0..<steps {
    let rows = (0..<batchSize).map { _ in Int(generator.next() % UInt64(dataset.count)) }
    workspace.load(rows: rows, of: dataset)
    objective.gradient(weights: weights, workspace: workspace, into: &gradient)
    if float32 { gradient = gradient.map { Double(Float($0)) } }
    if step % auditEvery == 0 {
      let audit = auditor.audit(
        weights: weights, workspace: workspace, gradient: gradient, seed: UInt64(step))
      tally.audits += 1
      tally.failed += audit.passed ? 0 : 1
      tally.conclusive += audit.isConclusive ? 1 : 0
      tally.comparisons += audit.comparisons.count
      tally.kinkSkipped += audit.kinkCount
      tally.maximumRelativeError = max(tally.maximumRelativeError, audit.maximumRelativeError)
      if faults && step % faultEvery == 0 {
        let scaled = gradient.map { $0 * (1 + 1e-6) }
        let scaledAudit = auditor.audit(
          weights: weights, workspace: workspace, gradient: scaled, seed: UInt64(step))
        tally.scaledTried += 1
        tally.scaledCaught += scaledAudit.passed ? 0 : 1
        let ranked = gradient.indices.sorted { abs(gradient[$0]) > abs(gradient[$1]) }
        var flipped = gradient
        flipped[ranked[step % 10]].negate()
        let flippedAudit = auditor.audit(
          weights: weights, workspace: workspace, gradient: flipped, seed: UInt64(step))
        tally.flippedTried += 1
        tally.flippedCaught += flippedAudit.passed ? 0 : 1
      }
    }
    for index in weights.indices { weights[index] -= learningRate * gradient[index] }
    network.layout.roundToElementTypes(&weights)
  }
  return tally
}

/// Audits of relu MLPs along whole training runs: correct gradients never
/// fail and are mostly measured above rounding noise; small faults are caught.
@Suite struct DenseTrainingAuditTests {
  static let data = try! Dataset.generateClassification(
    features: 8, classes: 4, rows: 512, seed: 11)

  @Test func trainingARelUMLPIsAuditedConclusivelyAndCatchesSmallFaults() {
    let network = DenseNetwork(
      inputCount: 8, hiddenSizes: [32], outputCount: 4, activation: .relu, loss: .crossEntropy)
    let tally = trainAndAudit(
      network: network, dataset: Self.data, batchSize: 16, learningRate: 0.1, steps: 300,
      seed: 1, maximumCoordinates: 24)
    print("relu MLP, generated data: \(tally)")
    #expect(tally.failed == 0)
    #expect(tally.conclusive * 10 >= tally.audits * 9)
    #expect(tally.scaledCaught * 10 >= tally.scaledTried * 9)
    #expect(tally.flippedCaught == tally.flippedTried)
  }

  /// A hidden unit 1e-12 from its kink for the one example: every step the
  /// auditor tries along a direction that moves it may cross, and the
  /// difference across the kink is far off the (one-sided) gradient. Those
  /// comparisons are skipped, never failed; the others still measure.
  @Test func aStepAcrossAKinkIsNeverAFailure() {
    let network = DenseNetwork(
      inputCount: 2, hiddenSizes: [3], outputCount: 1, activation: .relu, loss: .squared)
    // layer1.weight [2, 3], layer1.bias [3], layer2.weight [3, 1], layer2.bias [1];
    // unit 0's pre-activation is 1·0.25 + 0.5·0.5 + (−0.5 + 1e-12) = 1e-12.
    let weights: [Double] = [0.25, 1, -1, 0.5, 1, -1, -0.5 + 1e-12, 0.5, 0.5, 1, 1, 1, 0]
    let workspace = network.makeWorkspace(batchCapacity: 1)
    workspace.inputs = [1, 0.5]
    workspace.targets = [3]
    workspace.batchSize = 1
    var computed = [Double](repeating: 0, count: network.parameterCount)
    Objective(model: network).gradient(weights: weights, workspace: workspace, into: &computed)
    let audit = GradientAuditor(model: network).audit(
      weights: weights, workspace: workspace, gradient: computed, seed: 4)
    #expect(audit.passed)
    // Unit 0's incoming weights and bias, and its outgoing weight, all move it or its output.
    let skipped = Set(audit.coordinates.filter(\.crossesKink).map(\.label))
    #expect(skipped.isSuperset(of: ["w[0]", "w[3]", "w[6]"]))
    // The differences across the kink are no evidence: they are far off the gradient.
    let across = audit.coordinates.filter(\.crossesKink)
    #expect(across.contains { abs($0.analytic - $0.numeric) > 1e-3 * $0.magnitude })
    // Away from the kink the audit still measures.
    #expect(audit.coordinates.contains { !$0.crossesKink && $0.isConclusive })
  }

  /// Float32 networks: their rounding is accounted for, so correct gradients pass.
  @Test func float32NetworksAreNeverFlagged() {
    let network = DenseNetwork(
      inputCount: 8, hiddenSizes: [32], outputCount: 4, activation: .relu, loss: .crossEntropy,
      elementType: .float32)
    let tally = trainAndAudit(
      network: network, dataset: Self.data, batchSize: 16, learningRate: 0.1, steps: 100,
      seed: 3, faults: false, maximumCoordinates: 24)
    print("relu MLP float32: \(tally)")
    #expect(tally.failed == 0)
  }

  /// The figures in docs/audits.md: at least 10,000 audits of relu MLPs
  /// training on digits (`deploy/datasets/digits.sh DIR`). Runs only when
  /// PSTRAIN_AUDIT_BENCH names DIR/digits-train.csv (it takes minutes; build
  /// with -c release). PSTRAIN_AUDIT_BENCH_STEPS sets the steps per run (4 runs),
  /// PSTRAIN_AUDIT_BENCH_FLOAT32=1 runs Float32 networks instead.
  @Test func digitsAuditBenchmark() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let path = environment["PSTRAIN_AUDIT_BENCH"] else { return }
    let dataset = try Dataset(csv: String(contentsOfFile: path, encoding: .utf8))
    let steps = environment["PSTRAIN_AUDIT_BENCH_STEPS"].flatMap { Int($0) } ?? 2500
    // The 16 largest coordinates only, to keep 10,000 audits within minutes (the
    // coordinator's default adds 48 random ones, which are rarely conclusive).
    let coordinates = environment["PSTRAIN_AUDIT_BENCH_COORDINATES"].flatMap { Int($0) } ?? 16
    let types: [ElementType] =
      environment["PSTRAIN_AUDIT_BENCH_FLOAT32"] == "1" ? [.float32] : [.float64]
    for elementType in types {
      var total = AuditTally()
      for run in 0..<4 {
        let network = DenseNetwork(
          inputCount: dataset.featureCount, hiddenSizes: [128], outputCount: 10,
          activation: .relu, loss: .crossEntropy, elementType: elementType)
        let tally = trainAndAudit(
          network: network, dataset: dataset, batchSize: 32, learningRate: 0.05, steps: steps,
          seed: UInt64(run + 1), faults: run == 0, faultEvery: 5, maximumCoordinates: coordinates)
        print("digits mlp:128 relu \(elementType) run \(run): \(tally)")
        total.add(tally)
      }
      print("digits mlp:128 relu \(elementType) total: \(total)")
      #expect(total.failed == 0)
    }
  }
}
