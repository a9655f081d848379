#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Softmax cross-entropy: per example, the outputs o (K logits) are turned into
/// probabilities p = softmax(o) and the loss is −log p_c for the target class
/// c. Computed stably as log Σ_j e^(o_j − m) − (o_c − m) with m = max_j o_j, so
/// no exponential overflows and huge logits give a finite loss; the gradient
/// with respect to the logits is p − onehot(c).
public struct SoftmaxCrossEntropyLoss: Loss, Equatable {
  /// A softmax cross-entropy loss.
  public init() {}

  public var name: String { "cross-entropy" }
  public var isClassification: Bool { true }

  public func accumulate(workspace: BatchWorkspace, into total: inout Double, writeGradient: Bool) {
    let classes = workspace.outputCount
    for example in 0..<workspace.batchSize {
      let (row, target, maximum) = Self.example(example, of: workspace)
      var sum = 0.0
      for j in 0..<classes { sum += exp(workspace.outputs[row + j] - maximum) }
      total += log(sum) - (workspace.outputs[row + target] - maximum)
      if writeGradient {
        for j in 0..<classes {
          let probability = exp(workspace.outputs[row + j] - maximum) / sum
          workspace.outputGradient[row + j] = j == target ? probability - 1 : probability
        }
      }
    }
  }

  /// The bound, per example, with u the Float64 unit roundoff, δ_j the bound on
  /// logit j's error (`workspace.outputBounds`) and Δ = max_j δ_j:
  ///
  /// - Propagated: between the computed logits ô and the exact ones the loss
  ///   changes by ∇loss(ξ)·(o − ô) for some ξ on the segment, and
  ///   |p_j(ξ) − y_j| ≤ |p̂_j − y_j| + p_j(ô)·(r_j + e^(2Δ) − 1) =: s_j, with p̂_j
  ///   the computed probability, r_j its relative rounding (below) and
  ///   p_j(ô) ≤ p̂_j(1 + 2r_j); so logit errors move the loss by at most
  ///   Σ_j s_j·δ_j, and never more than 2Δ (Σ_j |p_j − y_j| ≤ 2). For a
  ///   well-classified example (p ≈ y) that is far below 2Δ.
  ///   The gradient p − y moves by at most p_j·e^(2Δ)·(δ_j + Δ)
  ///   (∂p_j/∂o_k = p_j(δ_jk − p_k), and p_j grows by at most e^(2Δ) in between).
  /// - Rounding: d_j = o_j − m is within u|d_j|, e^(d_j) within (2 + |d_j|)u
  ///   relative (glibc's exp is within 1 ulp), so the sum s ≥ 1 is within a
  ///   relative ρ = γ_K + Σ_j e_j(2 + |d_j|)u / s and log s within ρ + 2u·log s;
  ///   the final subtraction adds u per operand. Each probability is within
  ///   (3 + |d_j|)u + ρ relative, and p − 1 adds u.
  public func accumulateErrorBounds(
    workspace: BatchWorkspace, into total: inout Double, writeGradient: Bool
  ) {
    let u = Rounding.unit
    let classes = workspace.outputCount
    for example in 0..<workspace.batchSize {
      let (row, target, maximum) = Self.example(example, of: workspace)
      var largestBound = 0.0
      var sum = 0.0
      var sumError = 0.0
      for j in 0..<classes {
        largestBound = max(largestBound, workspace.outputBounds[row + j])
        let shifted = workspace.outputs[row + j] - maximum
        let term = exp(shifted)
        sum += term
        sumError += term * (2 + abs(shifted)) * u
      }
      let relative = (Rounding.gamma(classes) + sumError / sum) * (1 + 4 * u)
      let logSum = log(sum)
      let targetGap = abs(workspace.outputs[row + target] - maximum)
      // Σ_j s_j·δ_j with s_j ≥ |p_j(ξ) − y_j| anywhere between the computed and
      // the exact logits (see above); never more than 2Δ.
      let spread = expm1(2 * largestBound) * (1 + 8 * u)
      var propagated = 0.0
      for j in 0..<classes {
        let shifted = workspace.outputs[row + j] - maximum
        let probability = exp(shifted) / sum
        let rounding = ((3 + abs(shifted)) * u + relative) * (1 + 4 * u)
        let residual = abs(j == target ? probability - 1 : probability) * (1 + u) + u
        let sensitivity = residual + probability * (1 + 2 * rounding) * (rounding + spread)
        propagated += sensitivity * workspace.outputBounds[row + j]
      }
      propagated = min(propagated * (1 + Rounding.gamma(2 * classes + 4)), 2 * largestBound)
      total +=
        (relative * (1 + 2 * relative) + 3 * u * (logSum + targetGap) + propagated)
        * (1 + 4 * u)
      guard writeGradient else { continue }
      let growth = exp(2 * largestBound) * (1 + 8 * u)
      for j in 0..<classes {
        let shifted = workspace.outputs[row + j] - maximum
        let probability = exp(shifted) / sum
        let rounding = probability * ((3 + abs(shifted)) * u + relative) * (1 + 4 * u) + u
        let propagated = probability * growth * (workspace.outputBounds[row + j] + largestBound)
        workspace.outputGradientBounds[row + j] = rounding + propagated
      }
    }
  }

  /// Where example `index`'s logits start in `workspace.outputs`, its target
  /// class, and its largest logit.
  static func example(_ index: Int, of workspace: BatchWorkspace) -> (
    row: Int, target: Int, maximum: Double
  ) {
    let classes = workspace.outputCount
    let row = index * classes
    let target = targetClass(workspace.targets[index], classes: classes)
    return (row, target, maximum(workspace.outputs, row: row, count: classes))
  }

  /// The class index a target holds; anything else stops the process.
  static func targetClass(_ target: Double, classes: Int) -> Int {
    guard let index = Int(exactly: target), index >= 0, index < classes else {
      preconditionFailure("class target \(target) is not an index below \(classes)")
    }
    return index
  }

  /// The largest of `count` values from `row`.
  static func maximum(_ values: [Double], row: Int, count: Int) -> Double {
    var result = -Double.infinity
    for j in 0..<count { result = max(result, values[row + j]) }
    return result
  }
}
