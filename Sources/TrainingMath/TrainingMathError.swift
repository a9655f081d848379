/// Errors of the math layer: bad data, bad shards, bad hyper-parameters.
/// Each message names the offending value and, for files, the line.
public enum TrainingMathError: Error, Equatable, Sendable, CustomStringConvertible {
  case invalidLearningRate(Double)
  case invalidShard(String)
  case malformedRow(line: Int, text: String, reason: String)
  case emptyDataset
  case invalidGeneratorSettings(String)
  case invalidOptimizer(String)
  case invalidModel(String)

  public var description: String {
    switch self {
    case .invalidLearningRate(let value):
      "learning rate must be a finite number > 0, got \(value)"
    case .invalidShard(let reason):
      "invalid shard: \(reason)"
    case .malformedRow(let line, let text, let reason):
      "line \(line): \(reason): \"\(text.prefix(80))\""
    case .emptyDataset:
      "the dataset has no rows"
    case .invalidGeneratorSettings(let reason):
      "cannot generate data: \(reason)"
    case .invalidOptimizer(let reason):
      "invalid optimizer: \(reason)"
    case .invalidModel(let reason):
      "invalid model: \(reason)"
    }
  }
}
