/// A loss over a model's outputs: its value per example, its gradient with
/// respect to the outputs, and rounding bounds for audits.
public protocol Loss: Sendable {
  /// The loss's name: `squared` or `cross-entropy`.
  var name: String { get }
  /// Whether targets are class indices and outputs class scores.
  var isClassification: Bool { get }

  /// Adds each example's loss to `total`, in order, for the batch in
  /// `workspace` (outputs against targets), and when `writeGradient` is set
  /// writes ∂loss_i/∂output_i into `workspace.outputGradient`.
  func accumulate(workspace: BatchWorkspace, into total: inout Double, writeGradient: Bool)

  /// Adds to `total` a bound on the rounding error of the per-example losses
  /// `accumulate` adds, given `workspace.outputBounds`; when `writeGradient` is
  /// set, writes bounds on the error of each output gradient into
  /// `workspace.outputGradientBounds`.
  func accumulateErrorBounds(
    workspace: BatchWorkspace, into total: inout Double, writeGradient: Bool)
}
