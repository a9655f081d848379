/// One training example: an input `x` and its target `label`, with its row
/// number in the full dataset so a gradient can say which samples it used.
public struct Sample: Equatable, Hashable, Sendable {
  /// Row number in the full dataset, 0-based.
  public var index: Int
  /// The input.
  public var x: Double
  /// The target value ê.
  public var label: Double

  /// A sample at row `index`.
  public init(index: Int, x: Double, label: Double) {
    self.index = index
    self.x = x
    self.label = label
  }
}
