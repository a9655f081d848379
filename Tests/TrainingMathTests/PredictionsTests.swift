import Testing

@testable import TrainingMath

/// `DifferentiableModel.predictions`: one prediction per row, in batches,
/// agreeing with what `Objective.evaluate` measures.
@Suite struct PredictionsTests {
  /// A classifier's predicted classes are right exactly as often as the
  /// evaluation counts, whatever the batch size.
  @Test(arguments: [1, 7, 256])
  func aClassifiersPredictionsAreTheClassesEvaluationCounts(batch: Int) throws {
    let data = try Dataset.generateClassification(features: 3, classes: 4, rows: 50, seed: 2)
    let model = DenseNetwork(
      inputCount: 3, hiddenSizes: [5], outputCount: 4, activation: .tanh, loss: .crossEntropy)
    let weights = model.initialWeights(seed: 3)
    let predictions = model.predictions(weights: weights, dataset: data, batchCapacity: batch)
    #expect(predictions.count == 50)
    #expect(predictions.allSatisfy { (0..<4).contains(Int($0)) && $0.rounded() == $0 })
    let correct = zip(predictions, data.labels).filter { $0 == $1 }.count
    #expect(Objective(model: model).evaluate(weights: weights, dataset: data).correct == correct)
  }

  /// A regression model's predictions are its outputs: the chain's product times x.
  @Test func aRegressionModelsPredictionsAreItsOutputs() {
    let model = ChainModel(layers: 3)
    let weights = [0.5, -2.0, 0.25]
    let predictions = model.predictions(weights: weights, dataset: .seed, batchCapacity: 1)
    #expect(predictions == [-0.25, 0.25])
  }
}
