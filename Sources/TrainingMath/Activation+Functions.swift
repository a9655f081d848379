/// The activations as functions: their values and derivatives for the dense
/// passes (in either element type) and the constants the audit bounds use.
extension Activation {
  /// The activation named `text` (`relu`, `tanh` or `sigmoid`), or nil.
  public init?(parsing text: String) { self.init(rawValue: text) }

  /// f(z) in Float64.
  public func value(_ z: Double) -> Double { apply(z) }

  /// f'(z) expressed through a = f(z), as backpropagation uses it: 1 or 0 for
  /// relu (0 at the kink), 1 − a² for tanh, a(1 − a) for sigmoid.
  public func derivative(output a: Double) -> Double {
    switch self {
    case .relu: a > 0 ? 1 : 0
    case .tanh: 1 - a * a
    case .sigmoid: a * (1 - a)
    }
  }

  /// A bound on |f(z) − f(z')| / |z − z'|: how far an error in z moves f(z).
  public var lipschitzConstant: Double { self == .sigmoid ? 0.25 : 1 }

  /// A bound, in units of the unit roundoff, on the relative error of a
  /// computed f(z) for an exact z: relu is exact; tanh and the exp of sigmoid
  /// are within a few ulps in glibc, and sigmoid adds an addition and a division.
  var relativeRoundingUnits: Double { self == .relu ? 0 : 6 }

  /// f(z) in the network's element type.
  @inline(__always)
  func apply<Scalar: NetworkScalar>(_ z: Scalar) -> Scalar {
    switch self {
    case .relu: z > 0 ? z : 0
    case .tanh: Scalar.hyperbolicTangent(z)
    case .sigmoid: 1 / (1 + Scalar.exponential(-z))
    }
  }
}
