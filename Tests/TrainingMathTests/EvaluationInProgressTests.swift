import Testing

@testable import TrainingMath

/// An evaluation done a batch at a time gives the bits of one done at once.
@Suite struct EvaluationInProgressTests {
  @Test(arguments: [1, 7, 256, 1000])
  func stepsGiveTheSameBitsAsOneEvaluation(batchCapacity: Int) throws {
    let dataset = try Dataset.generate(rows: 300, seed: 3, noise: 0.1)
    let objective = Objective(model: ChainModel(layers: 3))
    let weights = [0.9, -1.1, 0.8]
    let whole = objective.evaluate(weights: weights, dataset: dataset)
    var stepped = EvaluationInProgress(
      objective: objective, weights: weights, dataset: dataset, batchCapacity: batchCapacity)
    var steps = 0
    while !stepped.isComplete {
      stepped.advance()
      steps += 1
      #expect(stepped.rowsDone == min(300, steps * batchCapacity))
    }
    #expect(steps == (300 + batchCapacity - 1) / batchCapacity)
    #expect(stepped.evaluation.loss.bitPattern == whole.loss.bitPattern)
    #expect(stepped.evaluation == whole)
    #expect(whole.count == 300 && whole.correct == nil)
    stepped.advance()  // nothing more to do
    #expect(stepped.evaluation == whole)
  }

  @Test func noRowsIsNoLossAndNoAccuracy() {
    let evaluation = EvaluationInProgress(
      objective: Objective(model: ChainModel(layers: 3)), weights: [1, 1, 1],
      dataset: Dataset(samples: []))
    #expect(evaluation.isComplete)
    #expect(evaluation.evaluation == Evaluation(count: 0, loss: 0, correct: nil))
  }
}
