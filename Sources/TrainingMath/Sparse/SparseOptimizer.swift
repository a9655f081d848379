/// The update rules a keyed table applies to the rows a push touches.
public enum SparseOptimizerKind: String, Equatable, Sendable, CaseIterable {
  /// `w ← w − lr·g`.
  case sgd
  /// AdaGrad (Duchi et al. 2011): `n ← n + g²`, `w ← w − lr·g / √(n + ε)`; one state value per weight.
  case adagrad
  /// FTRL-Proximal (McMahan et al. 2013) with L1 and L2, the sparse logistic
  /// regression standard: two state values (z, n) per weight, and weights that
  /// L1 holds at exactly zero.
  case ftrl
}

/// A keyed table's optimizer and its settings.
public struct SparseOptimizerSettings: Equatable, Sendable, CustomStringConvertible {
  /// The update rule.
  public var kind: SparseOptimizerKind
  /// The learning rate (FTRL's α).
  public var learningRate: Double
  /// FTRL's L1 strength λ1 (0: none).
  public var l1: Double
  /// FTRL's L2 strength λ2 (0: none).
  public var l2: Double
  /// FTRL's β (1 in the paper).
  public var beta: Double
  /// AdaGrad's starting accumulator ε, so the first step is finite.
  public var initialAccumulator: Double

  /// Settings; the defaults are the papers'.
  public init(
    kind: SparseOptimizerKind, learningRate: Double, l1: Double = 0, l2: Double = 0,
    beta: Double = 1, initialAccumulator: Double = 1e-6
  ) {
    self.kind = kind
    self.learningRate = learningRate
    self.l1 = l1
    self.l2 = l2
    self.beta = beta
    self.initialAccumulator = initialAccumulator
  }

  /// Optimizer state values kept per weight: 0 (sgd), 1 (adagrad), 2 (ftrl).
  public var stateValuesPerWeight: Int {
    switch kind {
    case .sgd: 0
    case .adagrad: 1
    case .ftrl: 2
    }
  }

  public var description: String {
    switch kind {
    case .sgd: "sgd lr=\(learningRate)"
    case .adagrad: "adagrad lr=\(learningRate)"
    case .ftrl: "ftrl alpha=\(learningRate) beta=\(beta) l1=\(l1) l2=\(l2)"
    }
  }
}
