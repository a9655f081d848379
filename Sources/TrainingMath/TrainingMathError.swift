/// Errors of the math layer: bad data, bad shards, bad hyper-parameters.
/// Each message names the offending value and, for files, the line (and column).
public enum TrainingMathError: Error, Equatable, Sendable, CustomStringConvertible {
  case invalidLearningRate(Double)
  case invalidShard(String)
  case malformedRow(line: Int, text: String, reason: String)
  /// A data field that is not a finite number: its line, column name and text.
  case invalidNumber(line: Int, column: String, text: String)
  /// A row whose field count differs from the header's (or, without a header, the first row's).
  case wrongFieldCount(line: Int, expected: Int, found: Int, hasHeader: Bool)
  /// A header that cannot name the columns (an empty or repeated name, an open quote).
  case invalidHeader(line: Int, reason: String)
  /// The requested label column is not in the header.
  case missingLabelColumn(name: String, columns: [String])
  case emptyDataset
  /// A label that is not a class index; `row` counts data rows from 0.
  case invalidClassLabel(row: Int, value: Double, reason: String)
  /// A class count out of bounds, declared or inferred.
  case invalidClassCount(String)
  case invalidGeneratorSettings(String)
  case invalidOptimizer(String)
  case invalidModel(String)
  /// A data format name that is not one pstrain reads.
  case invalidDataFormat(String)
  /// A sparse push that does not fit its batch (keys, row count or shape), for audits.
  case sparsePushMismatch(String)

  public var description: String {
    switch self {
    case .invalidLearningRate(let value):
      "learning rate must be a finite number > 0, got \(value)"
    case .invalidShard(let reason):
      "invalid shard: \(reason)"
    case .malformedRow(let line, let text, let reason):
      "line \(line): \(reason): \"\(text.prefix(80))\""
    case .invalidNumber(let line, let column, let text):
      "line \(line), column \"\(column.prefix(80))\": \"\(text.prefix(80))\" is not a finite number"
    case .wrongFieldCount(let line, let expected, let found, let hasHeader):
      "line \(line): expected \(expected) fields like the \(hasHeader ? "header" : "first row"), found \(found)"
    case .invalidHeader(let line, let reason):
      "line \(line): invalid header: \(reason)"
    case .missingLabelColumn(let name, let columns):
      "no column \"\(name.prefix(80))\" for the label; the columns are \(Self.list(columns))"
    case .emptyDataset:
      "the dataset has no rows"
    case .invalidClassLabel(let row, let value, let reason):
      "row \(row) (counting data rows from 0): label \(Self.number(value)) \(reason)"
    case .invalidClassCount(let reason):
      "invalid class count: \(reason)"
    case .invalidGeneratorSettings(let reason):
      "cannot generate data: \(reason)"
    case .invalidOptimizer(let reason):
      "invalid optimizer: \(reason)"
    case .invalidModel(let reason):
      "invalid model: \(reason)"
    case .invalidDataFormat(let reason):
      reason
    case .sparsePushMismatch(let reason):
      "sparse push does not fit its batch: \(reason)"
    }
  }

  /// `value` as an integer when it is one (`2`, not `2.0`).
  private static func number(_ value: Double) -> String {
    value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
  }

  /// `names` quoted and comma-separated, the first 12 only when there are more.
  private static func list(_ names: [String]) -> String {
    let shown = names.prefix(12).map { "\"\($0.prefix(40))\"" }.joined(separator: ", ")
    return names.count > 12 ? "\(shown), ... (\(names.count) in all)" : shown
  }
}
