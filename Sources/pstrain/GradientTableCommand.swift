import ArgumentParser
import TrainingMath

/// `pstrain gradcheck`: the tutorial's gradient table, computed by this build.
struct GradientTableCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gradcheck",
    abstract: "Print backprop against central differences at the initial weights.",
    discussion:
      "With the defaults this reproduces the table of the seed tutorial (x = 1, label = -1).")

  @Option(help: "Depth L of the chain model.")
  var layers: Int = 3

  @Option(help: "Input x.")
  var x: Double = 1

  @Option(help: "Label.")
  var label: Double = -1

  @Option(help: "Finite-difference step.")
  var eps: Double = 1e-4

  func validate() throws {
    guard (1...10_000).contains(layers) else { throw ValidationError("--layers must be 1...10000") }
    guard eps.isFinite, eps > 0 else { throw ValidationError("--eps must be > 0") }
  }

  func run() {
    let model = ChainModel(layers: layers)
    let objective = Objective(model: model)
    let weights = model.initialWeights()
    let samples = [Sample(index: 0, x: x, label: label)]
    let gradient = objective.gradient(weights: weights, samples: samples)
    print("loss \(objective.loss(weights: weights, samples: samples))")
    print("weight  backprop  central-difference  relative-error")
    for index in weights.indices {
      let numeric = FiniteDifference.centralDifference(
        { objective.loss(weights: $0, samples: samples) }, at: weights, coordinate: index, step: eps
      )
      print(
        "w\(index + 1)  \(gradient[index])  \(numeric)  \(relativeError(gradient[index], numeric))")
    }
  }
}
