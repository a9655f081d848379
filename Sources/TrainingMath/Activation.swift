/// The nonlinearity between a dense network's layers.
public enum Activation: String, Equatable, Hashable, Sendable, CaseIterable {
  /// max(0, z): not differentiable at 0 (audits watch for that kink).
  case relu
  /// tanh(z).
  case tanh
  /// 1 / (1 + e^−z).
  case sigmoid
}
