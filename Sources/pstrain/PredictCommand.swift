import ArgumentParser
import Roles
import TrainingMath
import WireProtocol

/// `pstrain predict`: a saved model's predictions for the rows of a data file.
struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Print a saved model's prediction for each row of a data file.",
    discussion: """
      Reads the model saved by `pstrain train --save-model` and the data as train reads it.
      Prints one line per row, numbered from 0: `row N: class K` for a classifier (the class
      with the highest score), `row N: VALUE` for a regression model; then, when the data has
      labels, the accuracy (classifiers) and the mean loss, computed as train's summary
      computes them. A file with exactly the model's features and no column named label (nor
      --label-column) is read as unlabeled. --json prints one object instead:
      {"model":..., "rows":N, "predictions":[...], "accuracy":..., "loss":...} (null when
      there is nothing to measure). Data that does not fit the model (another feature count,
      labels that are not its classes) is refused.
      """)

  @Option(help: "The saved model (from pstrain train --save-model).")
  var modelFile: String

  @Option(help: "CSV file of the rows (default: the tutorial's two samples).")
  var data: String?

  @Option(help: "The label's column (default: the column named label, else the last).")
  var labelColumn: String?

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  func run() throws {
    try runReportingErrors {
      let (saved, model) = try SavedModelFile.load(modelFile)
      let (dataset, labeled) = try readData(for: model)
      let predictions = model.predictions(weights: saved.weights, dataset: dataset)
      let evaluation =
        labeled ? Objective(model: model).evaluate(weights: saved.weights, dataset: dataset) : nil
      let classifies = model.isClassifier
      if json {
        let values = classifies ? predictions.map { "\(Int($0))" } : predictions.map(JSON.number)
        print(
          "{\"model\":\(JSON.string(saved.model.description)),\"rows\":\(dataset.count),"
            + "\"predictions\":[\(values.joined(separator: ","))],"
            + "\"accuracy\":\(evaluation?.accuracy.map(JSON.number) ?? "null"),"
            + "\"loss\":\(evaluation.map { JSON.number($0.loss) } ?? "null")}")
        return
      }
      for (row, prediction) in predictions.enumerated() {
        print(classifies ? "row \(row): class \(Int(prediction))" : "row \(row): \(prediction)")
      }
      guard let evaluation else { return }
      if let correct = evaluation.correct, let accuracy = evaluation.accuracy {
        print("accuracy \(accuracy) (\(correct) of \(evaluation.count) rows)")
      }
      print("loss \(evaluation.loss) (mean over \(evaluation.count) rows)")
    }
  }

  /// The rows, and whether they have labels: a file with exactly the model's
  /// features and no label column named is read as all features.
  private func readData(for model: AnyDifferentiableModel) throws -> (Dataset, labeled: Bool) {
    let dataset = try loadDataset(data, labelColumn: labelColumn)
    if data != nil, labelColumn == nil, dataset.labelName != "label",
      dataset.featureCount + 1 == model.inputCount
    {
      return (dataset.withLabelAsLastFeature(), false)
    }
    try checkData(dataset, fits: model, path: data, whose: "the saved model")
    return (dataset, true)
  }
}

extension Dataset {
  /// The same rows with the label column read as one more feature (the last),
  /// and no labels (zeros): a file of features only.
  fileprivate func withLabelAsLastFeature() -> Dataset {
    var all: [Double] = []
    all.reserveCapacity(count * (featureCount + 1))
    for row in 0..<count {
      all.append(contentsOf: features(ofRow: row))
      all.append(labels[row])
    }
    return Dataset(
      featureNames: featureNames + [labelName], labelName: "none", features: all,
      labels: [Double](repeating: 0, count: count))
  }
}
