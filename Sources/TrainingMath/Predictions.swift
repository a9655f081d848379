extension DifferentiableModel {
  /// Each row's prediction at `weights`: the class with the highest score for a
  /// classifier, the (first) output for a regression model. Computed in batches
  /// of up to `batchCapacity` rows through one workspace.
  public func predictions(weights: [Double], dataset: Dataset, batchCapacity: Int = 256)
    -> [Double]
  {
    var result: [Double] = []
    result.reserveCapacity(dataset.count)
    let workspace = makeWorkspace(batchCapacity: min(batchCapacity, max(1, dataset.count)))
    let classifies = isClassifier
    var start = 0
    while start < dataset.count {
      let end = min(start + workspace.batchCapacity, dataset.count)
      workspace.load(rows: start..<end, of: dataset)
      forward(weights: weights, workspace: workspace)
      for example in 0..<(end - start) {
        result.append(
          classifies
            ? Double(workspace.predictedClass(ofExample: example))
            : workspace.outputs[example * outputCount])
      }
      start = end
    }
    return result
  }
}
