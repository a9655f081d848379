/// Any model, as one type: what a command builds from a spec or a server's
/// descriptor and hands to the generic roles. Each call is forwarded once per
/// batch, so the indirection costs nothing measurable.
public struct AnyDifferentiableModel: DifferentiableModel {
  /// The model itself.
  public let base: any DifferentiableModel

  /// `base`, wrapped.
  public init(_ base: any DifferentiableModel) {
    if let wrapped = base as? AnyDifferentiableModel {
      self.base = wrapped.base
    } else {
      self.base = base
    }
  }

  public var name: String { base.name }
  public var layout: [TensorSpec] { base.layout }
  public var parameterCount: Int { base.parameterCount }
  public var inputCount: Int { base.inputCount }
  public var outputCount: Int { base.outputCount }
  public var loss: any Loss { base.loss }
  public func makeWorkspace(batchCapacity: Int) -> BatchWorkspace {
    base.makeWorkspace(batchCapacity: batchCapacity)
  }
  public func forward(weights: [Double], workspace: BatchWorkspace) {
    base.forward(weights: weights, workspace: workspace)
  }
  public func backward(weights: [Double], workspace: BatchWorkspace, gradient: inout [Double]) {
    base.backward(weights: weights, workspace: workspace, gradient: &gradient)
  }
  public func initialWeights(seed: UInt64) -> [Double] { base.initialWeights(seed: seed) }
  public func outputErrorBounds(weights: [Double], workspace: BatchWorkspace) {
    base.outputErrorBounds(weights: weights, workspace: workspace)
  }
  public func gradientErrorBounds(weights: [Double], workspace: BatchWorkspace) -> GradientBounds {
    base.gradientErrorBounds(weights: weights, workspace: workspace)
  }
  public var auditRule: FiniteDifferenceRule { base.auditRule }
  public func likelyOutputErrors(weights: [Double], workspace: BatchWorkspace) -> Bool {
    base.likelyOutputErrors(weights: weights, workspace: workspace)
  }
  public func mayCrossKink(
    weights: [Double], direction: [Double], step: Double, workspace: BatchWorkspace
  ) -> Bool {
    base.mayCrossKink(weights: weights, direction: direction, step: step, workspace: workspace)
  }
}
