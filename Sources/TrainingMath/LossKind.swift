/// Which loss a dense network is trained with.
public enum LossKind: String, Equatable, Hashable, Sendable, CaseIterable {
  /// Squared error against regression targets (`SquaredErrorLoss`).
  case squared
  /// Softmax cross-entropy against class indices (`SoftmaxCrossEntropyLoss`).
  case crossEntropy = "cross-entropy"

  /// The loss itself.
  public var loss: any Loss {
    switch self {
    case .squared: SquaredErrorLoss()
    case .crossEntropy: SoftmaxCrossEntropyLoss()
    }
  }
}
