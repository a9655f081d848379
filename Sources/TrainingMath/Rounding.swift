/// Floating-point rounding constants for error bounds (Higham, "Accuracy and
/// Stability of Numerical Algorithms", section 3.1).
public enum Rounding {
  /// The unit roundoff of Float64: 2^-53.
  public static let unit = Double.ulpOfOne / 2

  /// γ(n) = n·u / (1 − n·u): the relative error bound of n chained roundings.
  public static func gamma(_ n: Int) -> Double {
    let nu = Double(n) * unit
    return nu / (1 - nu)
  }
}
