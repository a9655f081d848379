@testable import TrainingMath

/// Small random sparse data and rows for the sparse tests: `count` rows of 1...`maximumNonzeros`
/// features drawn from `featureSpace` ids (so rows share and repeat keys), Gaussian
/// or unit values, and random labels.
func randomSparseData(
  count: Int, maximumNonzeros: Int, featureSpace: UInt64, generator: inout SplitMix64
) -> SparseDataset {
  var starts = [0]
  var ids: [UInt64] = []
  var values: [Double] = []
  var labels: [Double] = []
  for _ in 0..<count {
    let nonzeros = 1 + Int(generator.next() % UInt64(maximumNonzeros))
    for _ in 0..<nonzeros {
      ids.append(generator.next() % featureSpace)
      values.append(generator.next() % 2 == 0 ? 1 : generator.nextGaussian())
    }
    starts.append(ids.count)
    labels.append(Double(generator.next() % 2))
  }
  return SparseDataset(rowStarts: starts, featureIDs: ids, values: values, labels: labels)
}

/// Rows for `batch`'s keys: weights N(0, weightScale²), factors N(0, factorScale²).
func randomSparseRows(
  _ batch: SparseBatch, width: Int, weightScale: Double, factorScale: Double,
  generator: inout SplitMix64
) -> [Double] {
  var values: [Double] = []
  for _ in batch.keys {
    values.append(weightScale * generator.nextGaussian())
    for _ in 1..<width { values.append(factorScale * generator.nextGaussian()) }
  }
  return values
}
