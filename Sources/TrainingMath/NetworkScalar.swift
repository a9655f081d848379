import BLAS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The element types dense networks compute in: Double (float64 models) and
/// Float (float32 models), with the elementary functions their activations need.
protocol NetworkScalar: BLASElement {
  /// tanh(x).
  static func hyperbolicTangent(_ x: Self) -> Self
  /// e^x.
  static func exponential(_ x: Self) -> Self
}

extension Double: NetworkScalar {
  static func hyperbolicTangent(_ x: Double) -> Double { tanh(x) }
  static func exponential(_ x: Double) -> Double { exp(x) }
}

extension Float: NetworkScalar {
  static func hyperbolicTangent(_ x: Float) -> Float { tanh(x) }
  static func exponential(_ x: Float) -> Float { exp(x) }
}
