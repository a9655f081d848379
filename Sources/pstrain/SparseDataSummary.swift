import Roles
import TrainingMath

/// What `data describe` says about a libsvm file: its shape and click rate.
struct SparseDataSummary {
  /// Rows.
  var rows: Int
  /// Nonzeros in all rows.
  var nonzeros: Int
  /// Distinct feature ids.
  var distinctIDs: Int
  /// The smallest and largest feature id (nil without nonzeros).
  var idRange: ClosedRange<UInt64>?
  /// The fraction of rows labelled 1.
  var clickRate: Double
  /// The dataset's fingerprint, as workers report it.
  var fingerprint: UInt64

  /// The summary of `dataset`.
  init(_ dataset: SparseDataset) {
    rows = dataset.count
    nonzeros = dataset.nonzeroCount
    var ids = Set<UInt64>()
    for id in dataset.featureIDs { ids.insert(id) }
    distinctIDs = ids.count
    idRange = ids.min().flatMap { low in ids.max().map { low...$0 } }
    clickRate = dataset.labels.reduce(0, +) / Double(max(dataset.count, 1))
    fingerprint = dataset.fingerprint
  }

  /// The summary in words, a few lines.
  func text(file: String) -> String {
    let range = idRange.map { "ids \($0.lowerBound)...\($0.upperBound)" } ?? "no ids"
    return """
      \(file): libsvm, \(rows) rows, \(nonzeros) nonzeros (\(Double(nonzeros) / Double(max(rows, 1))) a row), \(distinctIDs) distinct feature ids (\(range))
      labels: 0/1, click rate \(clickRate)
      fingerprint: \(String(fingerprint, radix: 16))
      """
  }

  /// The summary as one JSON object.
  func json() -> String {
    "{\"format\":\"libsvm\",\"rows\":\(rows),\"nonzeros\":\(nonzeros),"
      + "\"distinct_ids\":\(distinctIDs),"
      + "\"min_id\":\(idRange.map { "\($0.lowerBound)" } ?? "null"),"
      + "\"max_id\":\(idRange.map { "\($0.upperBound)" } ?? "null"),"
      + "\"click_rate\":\(JSON.number(clickRate)),"
      + "\"fingerprint\":\"\(String(fingerprint, radix: 16))\"}"
  }
}
