/// A model over mini-batches of vector inputs: a flat parameter vector cut into
/// named tensors, a forward pass that caches its activations in a workspace and
/// a backward pass that reuses them (backpropagation). The loss is its own type
/// (`Loss`); the chain, linear, softmax and MLP models are all of this kind, and
/// every role works with any of them.
public protocol DifferentiableModel: Sendable {
  /// The model's name on the wire: `chain`, `linear`, `softmax`, `mlp.relu`,
  /// `mlp.tanh.squared`, ... With the layout's shapes it says everything needed
  /// to build the model again (`ModelSpec.model(named:layout:)`).
  var name: String { get }
  /// The named tensors the flat parameter vector is cut into, with their shapes.
  var layout: [TensorSpec] { get }
  /// Number of parameters (the sum of the layout's counts).
  var parameterCount: Int { get }
  /// Features per example (D).
  var inputCount: Int { get }
  /// Outputs per example (K): 1 for regression, the number of classes for classification.
  var outputCount: Int { get }
  /// The loss the model is trained with.
  var loss: any Loss { get }

  /// A workspace for batches of up to `batchCapacity` examples: inputs, targets,
  /// outputs, their gradient and the model's cached activations, allocated once
  /// so that a loop over batches allocates nothing.
  func makeWorkspace(batchCapacity: Int) -> BatchWorkspace

  /// The forward pass over the first `workspace.batchSize` rows of
  /// `workspace.inputs`: writes `workspace.outputs` (batchSize × outputCount,
  /// row-major) and caches what `backward` needs.
  func forward(weights: [Double], workspace: BatchWorkspace)

  /// Writes into `gradient` (parameterCount long, overwritten) the gradient of
  /// the mean over the batch of the per-example losses whose gradients with
  /// respect to the outputs are in `workspace.outputGradient` (per example, not
  /// divided by the batch size), reusing the activations `forward` cached at the
  /// same weights.
  func backward(weights: [Double], workspace: BatchWorkspace, gradient: inout [Double])

  /// Initial weights, the same bits for the same `seed`.
  func initialWeights(seed: UInt64) -> [Double]

  /// Rounding-error bounds for audits, for the batch in `workspace` after
  /// `forward` at `weights`: per output, a bound on the absolute rounding error
  /// of the computed output (written to `workspace.outputBounds`), and per
  /// parameter, bounds on the rounding error of the computed mean-loss gradient
  /// and on |∂loss/∂w_i| (for finite-difference step errors). The loss's
  /// gradient and its bound are in `workspace.outputGradient` and
  /// `workspace.outputGradientBounds` when this is called for the gradient.
  func outputErrorBounds(weights: [Double], workspace: BatchWorkspace)

  /// Like `outputErrorBounds`, but a probabilistic estimate instead of a worst
  /// case: per output, a size its rounding error exceeds only with a stated
  /// small probability under the standard model of independent rounding
  /// errors (written to `workspace.outputBounds`). Audits use it only to say
  /// whether a comparison is conclusive, never to fail one. Returns false,
  /// writing nothing, when the model has no such estimate (the worst case
  /// then serves for both).
  func likelyOutputErrors(weights: [Double], workspace: BatchWorkspace) -> Bool

  /// See `outputErrorBounds`: the per-parameter bounds of the mean-loss gradient.
  func gradientErrorBounds(weights: [Double], workspace: BatchWorkspace) -> GradientBounds

  /// How an audit differences this model's loss (see `GradientAuditor`): a
  /// step long enough that the rounding of the differenced losses, divided by
  /// it, stays far below the gradient, and a truncation estimate that holds at
  /// that step. The tutorial's rule (h = 1e-4) unless the model says otherwise.
  var auditRule: FiniteDifferenceRule { get }

  /// Whether a finite-difference step of length `step` along `direction` from
  /// `weights` may cross a point where the model is not differentiable for the
  /// batch in `workspace` (a ReLU's kink): such a difference is no evidence
  /// about the gradient. Smooth models return false.
  func mayCrossKink(
    weights: [Double], direction: [Double], step: Double, workspace: BatchWorkspace
  ) -> Bool
}

/// Per parameter, bounds on the rounding error of a computed mean-loss gradient
/// and on the gradient's magnitude near the weights.
public struct GradientBounds: Equatable, Sendable {
  /// |computed − exact| of each coordinate is at most this.
  public var rounding: [Double]
  /// |∂loss/∂w_i| is at most this near the weights.
  public var magnitude: [Double]

  /// Bounds with the given values.
  public init(rounding: [Double], magnitude: [Double]) {
    self.rounding = rounding
    self.magnitude = magnitude
  }
}

extension DifferentiableModel {
  /// The tutorial's rule: h = 1e-4, truncation from the three-point rule.
  public var auditRule: FiniteDifferenceRule { .tutorial }

  /// No probabilistic estimate: the worst-case bounds serve.
  public func likelyOutputErrors(weights: [Double], workspace: BatchWorkspace) -> Bool { false }

  /// Smooth models never cross a kink.
  public func mayCrossKink(
    weights: [Double], direction: [Double], step: Double, workspace: BatchWorkspace
  ) -> Bool { false }

  /// Whether the model's outputs are class scores (trained with a classification loss).
  public var isClassifier: Bool { loss.isClassification }
}
