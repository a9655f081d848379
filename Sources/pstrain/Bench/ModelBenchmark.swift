import BLAS
import Foundation
import Roles
import SystemCalls
import TrainingMath

/// `pstrain bench model`: forward + backward samples per second of one worker
/// thread on one model, batch and dtype, beside two baselines measured in the
/// same run: the same passes written as plain Swift loops (`DenseNetwork`'s
/// naive reference), and the same BLAS's GEMM rate on the same shapes (the
/// matrix products alone, without activations, losses or bias sums).
enum ModelBenchmark {
  /// What to measure.
  struct Settings {
    var model: AnyDifferentiableModel
    var batchSize: Int
    var seconds: Double
  }

  /// The figures of one run.
  struct Result {
    var samplesPerSecond: Double
    var naiveSamplesPerSecond: Double?
    var gemmSamplesPerSecond: Double?
    var gemmGigaflops: Double?
    var passGigaflops: Double

    var json: String {
      "{\"samples_per_s\":\(JSON.number(samplesPerSecond)),"
        + "\"naive_samples_per_s\":\(naiveSamplesPerSecond.map(JSON.number) ?? "null"),"
        + "\"gemm_only_samples_per_s\":\(gemmSamplesPerSecond.map(JSON.number) ?? "null"),"
        + "\"gemm_gflops\":\(gemmGigaflops.map(JSON.number) ?? "null"),"
        + "\"pass_gflops\":\(JSON.number(passGigaflops))}"
    }
  }

  /// Times `body` (one batch) repeatedly for about `seconds`, after a warm-up,
  /// and returns batches per second: the best of three slices, so a moment of
  /// contention on a shared machine does not decide the figure.
  static func batchesPerSecond(seconds: Double, _ body: () -> Void) -> Double {
    for _ in 0..<3 { body() }
    var best = 0.0
    for _ in 0..<3 {
      var count = 0
      let start = MonotonicClock.nanoseconds()
      repeat {
        body()
        count += 1
      } while Foundation.TimeInterval(MonotonicClock.nanoseconds() - start) / 1e9 < seconds / 3
      best = max(best, Double(count) / (Double(MonotonicClock.nanoseconds() - start) / 1e9))
    }
    return best
  }

  /// Floating-point operations of one forward + backward pass of a dense
  /// network over `batch` examples: 2·B·in·out per product, three products a
  /// layer (forward, weight gradient, input gradient) but the first layer's
  /// input gradient.
  static func flops(widths: [Int], batch: Int) -> Double {
    var total = 0.0
    for layer in 1..<widths.count {
      let product = 2.0 * Double(batch * widths[layer - 1] * widths[layer])
      total += product * (layer == 1 ? 2 : 3)
    }
    return total
  }

  static func run(_ settings: Settings, seed: UInt64 = 1) throws -> Result {
    let model = settings.model
    let batch = settings.batchSize
    let classes = model.outputCount
    // A deterministic batch: features in [0, 1), labels cycling through the classes.
    var generator = SplitMix64(seed: seed)
    let features = (0..<(batch * model.inputCount)).map { _ in generator.nextUnit() }
    let labels = (0..<batch).map { model.isClassifier ? Double($0 % classes) : generator.nextUnit() }
    let dataset = Dataset(
      featureNames: (0..<model.inputCount).map { "f\($0)" }, labelName: "label",
      features: features, labels: labels)
    let rows = Array(0..<batch)
    let objective = Objective(model: model)
    let weights = model.initialWeights(seed: seed)
    let workspace = model.makeWorkspace(batchCapacity: batch)
    var gradient = [Double](repeating: 0, count: model.parameterCount)
    let batches = batchesPerSecond(seconds: settings.seconds) {
      workspace.load(rows: rows, of: dataset)
      blackHole(objective.gradient(weights: weights, workspace: workspace, into: &gradient))
    }
    guard let dense = model.base as? DenseNetwork else {
      return Result(
        samplesPerSecond: batches * Double(batch), naiveSamplesPerSecond: nil,
        gemmSamplesPerSecond: nil, gemmGigaflops: nil, passGigaflops: 0)
    }
    let flops = flops(widths: dense.widths, batch: batch)
    // The naive loops: a shorter slice, they are far slower.
    let naive = batchesPerSecond(seconds: settings.seconds / 2) {
      workspace.load(rows: rows, of: dataset)
      let activations = dense.naiveForward(weights: weights, workspace: workspace)
      var total = 0.0
      model.loss.accumulate(workspace: workspace, into: &total, writeGradient: true)
      dense.naiveBackward(
        weights: weights, workspace: workspace, activations: activations, gradient: &gradient)
      blackHole(total)
    }
    let gemm: Double
    if dense.elementType == .float32 {
      gemm = gemmBatchesPerSecond(
        Float.self, widths: dense.widths, batch: batch, seconds: settings.seconds)
    } else {
      gemm = gemmBatchesPerSecond(
        Double.self, widths: dense.widths, batch: batch, seconds: settings.seconds)
    }
    return Result(
      samplesPerSecond: batches * Double(batch), naiveSamplesPerSecond: naive * Double(batch),
      gemmSamplesPerSecond: gemm * Double(batch), gemmGigaflops: gemm * flops / 1e9,
      passGigaflops: batches * flops / 1e9)
  }

  /// Batches per second of the GEMMs alone that one forward + backward pass
  /// makes, on buffers of the same shapes.
  static func gemmBatchesPerSecond<Element: BLASElement & BinaryFloatingPoint>(
    _: Element.Type, widths: [Int], batch: Int, seconds: Double
  ) -> Double {
    let layers = 1..<widths.count
    var activations = widths.map { [Element](repeating: 0.5, count: batch * $0) }
    var deltas = widths.map { [Element](repeating: 0.25, count: batch * $0) }
    var weights = layers.map { [Element](repeating: 0.01, count: widths[$0 - 1] * widths[$0]) }
    var gradients = weights
    return batchesPerSecond(seconds: seconds) {
      for layer in layers {
        BLAS.multiply(
          activations[layer - 1], .none, weights[layer - 1], .none, into: &activations[layer],
          rows: batch,
          columns: widths[layer], inner: widths[layer - 1])
      }
      for layer in layers.reversed() {
        BLAS.multiply(
          activations[layer - 1], .transposed, deltas[layer], .none, into: &gradients[layer - 1],
          rows: widths[layer - 1], columns: widths[layer], inner: batch)
        if layer > 1 {
          BLAS.multiply(
            deltas[layer], .none, weights[layer - 1], .transposed, into: &deltas[layer - 1],
            rows: batch,
            columns: widths[layer - 1], inner: widths[layer])
        }
      }
      weights[0][0] = gradients[0][0] * 0  // keep the work observable
    }
  }
}
