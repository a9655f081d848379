import Foundation
import Roles
import SystemCalls
import TrainingMath

/// Cached against naive backprop, and the audit's two ways of checking.
enum ComputeBenchmarks {
  /// Which backward pass of the chain a figure measures.
  enum ChainBackward { case cached, naive }

  /// ns per layer of forward + backward (cached or naive) at depth `layers`,
  /// repeated for about `budget` seconds.
  static func nanosecondsPerLayer(
    layers: Int, budget: Double, algorithm: ChainBackward
  ) -> Double {
    let model = ChainModel(layers: layers)
    let weights = (0..<layers).map { 1 + 1e-9 * Double($0 % 7) }
    var activations = model.makeActivations()
    var gradient = [Double](repeating: 0, count: layers)
    var repetitions = 0
    let start = MonotonicClock.nanoseconds()
    repeat {
      let e = model.forward(weights: weights, input: 0.5, activations: &activations)
      switch algorithm {
      case .cached:
        model.backward(
          weights: weights, activations: activations, outputGradient: e + 1, gradient: &gradient)
      case .naive:
        model.naiveBackward(
          weights: weights, activations: activations, outputGradient: e + 1, gradient: &gradient)
      }
      repetitions += 1
    } while seconds(from: start) < budget
    blackHole(gradient[0])
    return seconds(from: start) * 1e9 / Double(repetitions * layers)
  }

  /// ns per multiplication of a chain of dependent multiplications: the latency
  /// floor of any pass that multiplies layer after layer.
  static func dependentMultiplyNanoseconds(count: Int) -> Double {
    let weights = (0..<count).map { 1 + 1e-9 * Double($0 % 7) }
    var best = Double.infinity
    for _ in 0..<5 {
      var value = 0.5
      let start = MonotonicClock.nanoseconds()
      for weight in weights { value = value * weight }
      best = min(best, seconds(from: start) * 1e9 / Double(count))
      blackHole(value)
    }
    return best
  }

  static func backprop(quick: Bool) -> [BenchFigure] {
    var figures: [BenchFigure] = []
    let budget = quick ? 0.05 : 0.3
    var naiveAt10k = 0.0
    for layers in [10, 100, 1000, 10_000, 100_000, 1_000_000] {
      let cached = nanosecondsPerLayer(layers: layers, budget: budget, algorithm: .cached)
      let naive: Double
      var note: String?
      if layers <= 10_000 {
        naive = nanosecondsPerLayer(layers: layers, budget: budget, algorithm: .naive)
        if layers == 10_000 { naiveAt10k = naive }
      } else {
        // O(L²): the per-layer cost grows linearly with L; measured at 10^4, scaled.
        naive = naiveAt10k * Double(layers) / 10_000
        note = "naive extrapolated from L = 10^4 (O(L^2))"
      }
      figures.append(
        BenchFigure(
          suite: "backprop", name: "forward+cached backward, L = \(layers)", value: cached,
          unit: "ns/layer", baseline: naive, baselineName: "naive chain rule",
          higherIsBetter: false, note: note))
    }
    let latency = dependentMultiplyNanoseconds(count: 1_000_000)
    let atMillion = figures.last!.value
    figures.append(
      BenchFigure(
        suite: "backprop",
        name: "dependent-multiply latency bound (2 chained multiplies per layer)",
        value: 2 * latency, unit: "ns/layer", baseline: atMillion,
        baselineName: "forward+backward at L = 10^6", higherIsBetter: true,
        note: "ratio = bound / measured; 1 would be at the bound, >= 0.5 meets the 2x target"))
    return figures
  }

  static func audit(quick: Bool) -> [BenchFigure] {
    let layers = 10_000
    let model = ChainModel(layers: layers)
    let objective = Objective(model: model)
    let weights = (0..<layers).map { index in
      index == layers - 1 ? -0.9 : 1 + 1e-4 * Double(index % 3)
    }
    let samples = [Sample(index: 0, x: 0.7, label: -1)]
    var gradient = objective.gradient(weights: weights, samples: samples)
    let perCoordinate = GradientAuditor(model: model, maximumCoordinates: layers)
    let directional = GradientAuditor(model: model, maximumCoordinates: 0)
    var start = MonotonicClock.nanoseconds()
    let full = perCoordinate.audit(weights: weights, samples: samples, gradient: gradient, seed: 1)
    let fullSeconds = seconds(from: start)
    var repetitions = 0
    start = MonotonicClock.nanoseconds()
    repeat {
      _ = directional.audit(weights: weights, samples: samples, gradient: gradient, seed: 1)
      repetitions += 1
    } while seconds(from: start) < (quick ? 0.05 : 0.3)
    let directionalSeconds = seconds(from: start) / Double(repetitions)
    gradient[4321] = -gradient[4321]
    let corrupted = directional.audit(
      weights: weights, samples: samples, gradient: gradient, seed: 2)
    return [
      BenchFigure(
        suite: "audit", name: "directional audit, L = 10^4", value: directionalSeconds * 1e3,
        unit: "ms", baseline: fullSeconds * 1e3, baselineName: "per-coordinate audit",
        higherIsBetter: false,
        note:
          "per-coordinate passed: \(full.passed); directional flags one flipped coordinate: \(!corrupted.passed)"
      )
    ]
  }
}
