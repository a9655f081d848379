import BLAS

/// Rounding-error bounds and kink detection for audits (derivation in
/// docs/audits.md, "Dense networks"). Notation: u is the unit roundoff of the precision the
/// passes compute in (binary64 or binary32), γ_n = n·u/(1 − n·u), and |M| is
/// the elementwise absolute value of a matrix. For a dot product of length n
/// in any order, with or without fused multiply-adds,
/// |fl(x·y) − x·y| ≤ γ_n Σ|x_i y_i| (Higham, Accuracy and Stability, §3.1),
/// so every matrix product's error is bounded by a product of absolute values,
/// which these functions compute with BLAS in Float64. No product of two
/// errors is dropped; the bounds are evaluated in Float64 (their own rounding,
/// relative 1e-10 at most here, is covered by the factor `DenseAudit.slack`).
///
/// Forward, layer l with inputs â (computed, error e ≥ |â − a|), weights Ŵ, b̂
/// as used (Float32 networks: the Double weights rounded to Float, off by δW, δb;
/// inputs rounded likewise, off by e_0), n = fan-in:
///
///     ε_z = γ_(n+1)·(|â|·|Ŵ| + |b̂|) + e·|Ŵ| + (|â| + e)·δW + δb
///     e_l = L_f·ε_z + c_f·u·|â_l|        (hidden layers; the output layer: e_L = ε_z)
///
/// where L_f is the activation's Lipschitz constant (1, 1, 1/4) and c_f u the
/// relative error of the computed activation itself (0 for relu, 6u for tanh
/// and sigmoid).
///
/// Backward, from the output gradient G (per example, error bound E_G from the
/// loss) scaled by 1/B, with D ≥ |dZ| and E ≥ |dẐ − dZ| at layer l:
///
///     dW: γ_(B+2)·(|â| + e)ᵀ·D + eᵀ·D + (|â| + e)ᵀ·E     (magnitude (|â| + e)ᵀ·D)
///     db: γ_(B+2)·Σ_rows D + Σ_rows E                    (magnitude Σ_rows D)
///     dA: D_A = (1 + γ_(n_out+2))·D·(|Ŵ| + δW)ᵀ,  E_A = γ_(n_out+2)·D·|Ŵ|ᵀ + E·|Ŵ|ᵀ + D·δWᵀ
///     dZ_(l−1) = dA ⊙ f'(a):  D' = (1 + u)·D_A·(|d̂| + δd),
///                             E' = D_A·δd + E_A·(|d̂| + δd) + u·D_A·(|d̂| + δd)
///
/// (D_A and D' bound the computed values as well as the exact ones, hence the
/// (1 + γ) factors.)
///
/// with δd the error of the computed derivative d̂: e(2|â| + e) + γ_2(1 + â²)
/// for tanh, e(|1 − 2â| + e) + γ_2|â|(1 + |â|) for sigmoid, and for relu 0
/// where |ẑ| > 2ε_z (the sign of z is certain) and 1 elsewhere (the mask may
/// differ from the exact one).
extension DenseNetwork {
  public func outputErrorBounds(weights: [Double], workspace: BatchWorkspace) {
    let audit = DenseAudit(network: self, weights: weights, workspace: workspace)
    let bounds = audit.activationErrors[layerCount]
    for index in bounds.indices { workspace.outputBounds[index] = bounds[index] * DenseAudit.slack }
  }

  public func gradientErrorBounds(weights: [Double], workspace: BatchWorkspace) -> GradientBounds {
    let audit = DenseAudit(network: self, weights: weights, workspace: workspace)
    return audit.gradientBounds(workspace: workspace)
  }

  /// The audit's finite differences (docs/audits.md, "Step and truncation"):
  /// h = 4e-3 with the half-step check, so the derivative is the five-point
  /// rule at 2e-3. The loss of a dense network carries a rounding error far
  /// above the chain's (long dot products) and the step divides it, so the
  /// step is 40 times the tutorial's; the three-point rule's difference
  /// (~h²·f‴) would then swamp the 1% truncation estimate, so the
  /// truncation is measured against the five-point rule at h instead
  /// (measured on digits: h = 1e-3 leaves most audits below noise, 8e-3 lets
  /// truncation dominate). Where a relu kink is near, the auditor shortens the step.
  public var auditRule: FiniteDifferenceRule {
    FiniteDifferenceRule(step: 4e-3, checksHalfStep: true)
  }

  /// How many standard deviations `likelyOutputErrors` allows: with
  /// Hoeffding's inequality an output's first-order rounding error exceeds
  /// λ·σ with probability at most 2·exp(−λ²/2) ≈ 3e-8 for λ = 6.
  public static let likelyErrorDeviations = 6.0

  /// The probabilistic estimate of the outputs' rounding (Float64 networks
  /// only; Float32 ones round their weights to Float, a deterministic error
  /// the worst case covers). Model (Higham & Mary 2019): every rounding is
  /// x(1 + δ) with δ independent, mean 0, |δ| ≤ u. To first order the error
  /// of a pre-activation z = Σ a_i·w_i + b is Σ_k δ_k·t_k over its n + 1
  /// roundings, t_k its products and partial sums, each at most
  /// S = Σ|a_i w_i| + |b|; so its variance is at most (n + 1)·u²·S², plus
  /// what the inputs bring, Σ_i w_i²·Var(a_i), with Var(a) = f'(z)²·Var(z)
  /// (+ (c_f·u·a)² for tanh and sigmoid). Each output's estimate is
  /// λ·σ, λ = `likelyErrorDeviations`. Rounding errors are neither exactly
  /// independent nor of mean 0, and second-order terms are dropped: this is
  /// an estimate, used only to decide whether an audit is conclusive.
  public func likelyOutputErrors(weights: [Double], workspace: BatchWorkspace) -> Bool {
    guard elementType == .float64, workspace.batchSize > 0 else { return false }
    let audit = DenseAudit(network: self, weights: weights, workspace: workspace)
    let estimate = audit.likelyOutputErrors(deviations: Self.likelyErrorDeviations)
    for index in estimate.indices { workspace.outputBounds[index] = estimate[index] }
    return true
  }

  /// True when some hidden relu pre-activation z of the batch may change sign
  /// for a point w + t·direction with |t| ≤ step. A forward pass of absolute
  /// values bounds how far each z can move (relu is 1-Lipschitz):
  ///
  ///     Δa_0 = 0,  Δz_l = Δa_(l−1)·(|W| + s|U|) + s·((|â| + e)·|U| + |u_b|),  Δa_l = Δz_l
  ///
  /// with U, u_b the direction's weight and bias parts and s = `step`
  /// (Float32 networks add the rounding of the point to Float, u·(|w| + s|u|)
  /// in every weight). A kink may be crossed where |ẑ| ≤ Δz + 2ε_z, ε_z the
  /// forward rounding bound above. For a five-point difference at w ± 2h·u,
  /// pass step = 2h. Runs the forward pass at `weights` first (the workspace
  /// may hold another point's activations), overwriting the outputs and the cache.
  public func mayCrossKink(
    weights: [Double], direction: [Double], step: Double, workspace: BatchWorkspace
  ) -> Bool {
    guard activation == .relu, layerCount > 1, workspace.batchSize > 0 else { return false }
    precondition(direction.count == parameterCount, "direction has \(direction.count) elements")
    forward(weights: weights, workspace: workspace)
    let audit = DenseAudit(network: self, weights: weights, workspace: workspace)
    return audit.mayCrossKink(direction: direction, step: step)
  }
}

/// The forward pass's computed values and their error bounds, in Float64, for
/// one batch: what the audit bounds are built from.
struct DenseAudit {
  /// Covers the rounding of the bound computations themselves.
  static let slack = 1 + 1e-10

  let network: DenseNetwork
  let batch: Int
  /// Unit roundoff of the passes' precision.
  let unit: Double
  /// Per layer l = 1...L (index l − 1): |Ŵ_l|, |b̂_l| as used, and how far they are from the given weights.
  var weights: [[Double]] = []
  var biases: [[Double]] = []
  var weightRounding: [[Double]] = []
  var biasRounding: [[Double]] = []
  /// Per layer l = 0...L: the computed activations (0: the inputs as used, L: the outputs).
  var activations: [[Double]] = []
  /// Per layer l = 0...L: bounds on |â_l − a_l|.
  var activationErrors: [[Double]] = []
  /// Per layer l = 1...L (index l − 1): pre-activations recomputed in Float64
  /// from the computed inputs, and the forward bound ε_z.
  var preactivations: [[Double]] = []
  var preactivationErrors: [[Double]] = []
  /// Per layer l = 1...L (index l − 1): |â|·|Ŵ| + |b̂|, which bounds every
  /// product and partial sum of the pre-activation's dot product.
  var preactivationMagnitudes: [[Double]] = []

  init(network: DenseNetwork, weights given: [Double], workspace: BatchWorkspace) {
    let buffers = network.checkedBuffers(weights: given, workspace: workspace)
    self.network = network
    batch = workspace.batchSize
    let usesFloat = network.elementType == .float32
    unit = network.elementType.unitRoundoff
    let widths = network.widths
    let inputs = Array(workspace.inputs[0..<(batch * widths[0])])
    let usedInputs = usesFloat ? inputs.map { Double(Float($0)) } : inputs
    activations = [usedInputs]
    activationErrors = [zip(inputs, usedInputs).map { abs($0 - $1) }]
    var offset = 0
    for layer in 1...network.layerCount {
      let (fanIn, fanOut) = (widths[layer - 1], widths[layer])
      let weightRange = offset..<(offset + fanIn * fanOut)
      let biasRange = weightRange.upperBound..<(weightRange.upperBound + fanOut)
      offset = biasRange.upperBound
      let exactWeights = Array(given[weightRange])
      let exactBiases = Array(given[biasRange])
      let usedWeights = usesFloat ? exactWeights.map { Double(Float($0)) } : exactWeights
      let usedBiases = usesFloat ? exactBiases.map { Double(Float($0)) } : exactBiases
      weights.append(usedWeights.map(abs))
      biases.append(usedBiases.map(abs))
      weightRounding.append(zip(exactWeights, usedWeights).map { abs($0 - $1) })
      biasRounding.append(zip(exactBiases, usedBiases).map { abs($0 - $1) })

      let previous = activations[layer - 1]
      let previousError = activationErrors[layer - 1]
      let previousMagnitude = previous.map(abs)
      var z = Self.product(previous, .none, usedWeights, .none, batch, fanOut, fanIn)
      var sums = Self.product(
        previousMagnitude, .none, weights[layer - 1], .none, batch, fanOut, fanIn)
      let propagated = Self.product(
        previousError, .none, weights[layer - 1], .none, batch, fanOut, fanIn)
      let upper = zip(previousMagnitude, previousError).map { $0 + $1 }
      let fromRounding = Self.product(
        upper, .none, weightRounding[layer - 1], .none, batch, fanOut, fanIn)
      let gamma = Self.gamma(fanIn + 1, unit)
      var bound = [Double](repeating: 0, count: batch * fanOut)
      for row in 0..<batch {
        for j in 0..<fanOut {
          let index = row * fanOut + j
          z[index] += usedBiases[j]
          sums[index] += biases[layer - 1][j]
          bound[index] =
            gamma * sums[index] + propagated[index] + fromRounding[index]
            + biasRounding[layer - 1][j]
        }
      }
      preactivations.append(z)
      preactivationErrors.append(bound)
      preactivationMagnitudes.append(sums)
      if layer == network.layerCount {
        activations.append(Array(workspace.outputs[0..<(batch * fanOut)]))
        activationErrors.append(bound)
      } else {
        let computed = Self.cachedActivations(
          network: network, workspace: workspace, buffers: buffers, hidden: layer, batch: batch)
        let activation = network.activation
        activations.append(computed)
        activationErrors.append(
          (0..<computed.count).map { index in
            activation.lipschitzConstant * bound[index] + activation.relativeRoundingUnits * unit
              * abs(computed[index]) * (1 + 8 * unit)
          })
      }
    }
  }

  /// Per parameter: the rounding bound and the magnitude bound of the
  /// mean-loss gradient, from the loss's gradient and its bounds in `workspace`.
  func gradientBounds(workspace: BatchWorkspace) -> GradientBounds {
    let widths = network.widths
    let outputs = batch * network.outputCount
    var rounding = [Double](repeating: 0, count: network.parameterCount)
    var magnitude = [Double](repeating: 0, count: network.parameterCount)
    guard batch > 0 else { return GradientBounds(rounding: rounding, magnitude: magnitude) }
    let scale = 1 / Double(batch)
    // Float32 passes round the output gradient to Float first.
    var delta = [Double](repeating: 0, count: outputs)  // D ≥ |dZ|
    var deltaError = [Double](repeating: 0, count: outputs)  // E ≥ |dẐ − dZ|
    for index in 0..<outputs {
      let g = workspace.outputGradient[index]
      let used = network.elementType == .float32 ? Double(Float(g)) : g
      let error = workspace.outputGradientBounds[index] + abs(g - used)
      deltaError[index] = scale * error + unit * scale * abs(used)
      delta[index] = scale * (abs(used) + error)
    }
    var end = network.parameterCount
    for layer in stride(from: network.layerCount, through: 1, by: -1) {
      let (fanIn, fanOut) = (widths[layer - 1], widths[layer])
      let biasStart = end - fanOut
      let weightStart = biasStart - fanIn * fanOut
      let error = activationErrors[layer - 1]
      let upper = zip(activations[layer - 1], error).map { abs($0) + $1 }
      let weightMagnitude = Self.product(upper, .transposed, delta, .none, fanIn, fanOut, batch)
      let fromError = Self.product(error, .transposed, delta, .none, fanIn, fanOut, batch)
      let fromDeltaError = Self.product(upper, .transposed, deltaError, .none, fanIn, fanOut, batch)
      let gamma = Self.gamma(batch + 2, unit)
      for index in 0..<(fanIn * fanOut) {
        magnitude[weightStart + index] = weightMagnitude[index] * Self.slack
        rounding[weightStart + index] =
          (gamma * weightMagnitude[index] + fromError[index] + fromDeltaError[index]) * Self.slack
      }
      for j in 0..<fanOut {
        var sum = 0.0
        var errorSum = 0.0
        for row in 0..<batch {
          sum += delta[row * fanOut + j]
          errorSum += deltaError[row * fanOut + j]
        }
        magnitude[biasStart + j] = sum * Self.slack
        rounding[biasStart + j] = (gamma * sum + errorSum) * Self.slack
      }
      if layer > 1 {
        let used = weights[layer - 1]
        let exactUpper = zip(used, weightRounding[layer - 1]).map { $0 + $1 }
        let previousDelta = Self.product(
          delta, .none, exactUpper, .transposed, batch, fanIn, fanOut)
        let productRounding = Self.product(delta, .none, used, .transposed, batch, fanIn, fanOut)
        let fromErrors = Self.product(deltaError, .none, used, .transposed, batch, fanIn, fanOut)
        let fromWeights = Self.product(
          delta, .none, weightRounding[layer - 1], .transposed, batch, fanIn, fanOut)
        let gammaOut = Self.gamma(fanOut + 2, unit)
        let hidden = activations[layer - 1]
        let z = preactivations[layer - 2]
        let zBound = preactivationErrors[layer - 2]
        var nextDelta = [Double](repeating: 0, count: batch * fanIn)
        var nextError = [Double](repeating: 0, count: batch * fanIn)
        for index in 0..<(batch * fanIn) {
          let errorA = gammaOut * productRounding[index] + fromErrors[index] + fromWeights[index]
          let (slope, slopeError) = derivativeBound(
            output: hidden[index], error: error[index], preactivation: z[index],
            preactivationBound: zBound[index])
          let slopeUpper = abs(slope) + slopeError
          let upperA = (1 + gammaOut) * previousDelta[index]
          nextDelta[index] = (1 + unit) * upperA * slopeUpper
          nextError[index] = upperA * slopeError + errorA * slopeUpper + unit * upperA * slopeUpper
        }
        delta = nextDelta
        deltaError = nextError
      }
      end = weightStart
    }
    return GradientBounds(rounding: rounding, magnitude: magnitude)
  }

  /// See `DenseNetwork.likelyOutputErrors`: λ·σ per output.
  func likelyOutputErrors(deviations: Double) -> [Double] {
    let widths = network.widths
    let u2 = unit * unit
    var variance = [Double](repeating: 0, count: batch * widths[0])  // the inputs are exact
    for layer in 1...network.layerCount {
      let (fanIn, fanOut) = (widths[layer - 1], widths[layer])
      let squaredWeights = weights[layer - 1].map { $0 * $0 }
      var next = Self.product(variance, .none, squaredWeights, .none, batch, fanOut, fanIn)
      let magnitudes = preactivationMagnitudes[layer - 1]
      for index in next.indices {
        next[index] += Double(fanIn + 1) * u2 * magnitudes[index] * magnitudes[index]
      }
      if layer < network.layerCount {
        let computed = activations[layer]
        let own = network.activation.relativeRoundingUnits * unit
        for index in next.indices {
          let a = computed[index]
          let slope: Double
          switch network.activation {
          case .relu: slope = a > 0 ? 1 : 0
          case .tanh: slope = 1 - a * a
          case .sigmoid: slope = a * (1 - a)
          }
          next[index] = slope * slope * next[index] + own * own * a * a
        }
      }
      variance = next
    }
    return variance.map { deviations * $0.squareRoot() * Self.slack }
  }

  /// The computed derivative f'(z) from a computed activation and a bound on its error.
  func derivativeBound(
    output a: Double, error e: Double, preactivation z: Double, preactivationBound: Double
  ) -> (Double, Double) {
    let gamma2 = Self.gamma(2, unit)
    switch network.activation {
    case .relu:
      return (a > 0 ? 1 : 0, abs(z) > 2 * preactivationBound ? 0 : 1)
    case .tanh:
      return (1 - a * a, e * (2 * abs(a) + e) + gamma2 * (1 + a * a))
    case .sigmoid:
      return (a * (1 - a), e * (abs(1 - 2 * a) + e) + gamma2 * abs(a) * (1 + abs(a)))
    }
  }

  /// See `DenseNetwork.mayCrossKink`.
  func mayCrossKink(direction: [Double], step: Double) -> Bool {
    let widths = network.widths
    var shift = [Double](repeating: 0, count: batch * widths[0])  // Δa_(l−1)
    var offset = 0
    for layer in 1..<network.layerCount {
      let (fanIn, fanOut) = (widths[layer - 1], widths[layer])
      let weightRange = offset..<(offset + fanIn * fanOut)
      let biasRange = weightRange.upperBound..<(weightRange.upperBound + fanOut)
      offset = biasRange.upperBound
      let move = direction[weightRange].map { step * abs($0) }
      let moveBias = direction[biasRange].map { step * abs($0) }
      var reach = zip(weights[layer - 1], weightRounding[layer - 1]).map { $0 + $1 }
      for index in reach.indices { reach[index] += move[index] }
      var reachBias = zip(biases[layer - 1], biasRounding[layer - 1]).map { $0 + $1 }
      for index in reachBias.indices { reachBias[index] += moveBias[index] }
      let upper = zip(activations[layer - 1], activationErrors[layer - 1]).map { abs($0) + $1 }
      let fromShift = Self.product(shift, .none, reach, .none, batch, fanOut, fanIn)
      let fromMove = Self.product(upper, .none, move, .none, batch, fanOut, fanIn)
      // Float32 networks evaluate at the point rounded to Float: u·|w + t·u| per weight.
      let fromPointRounding =
        network.elementType == .float32
        ? Self.product(upper, .none, reach.map { unit * $0 }, .none, batch, fanOut, fanIn)
        : [Double](repeating: 0, count: batch * fanOut)
      let z = preactivations[layer - 1]
      let zBound = preactivationErrors[layer - 1]
      var nextShift = [Double](repeating: 0, count: batch * fanOut)
      for row in 0..<batch {
        for j in 0..<fanOut {
          let index = row * fanOut + j
          let biasMove =
            moveBias[j] + (network.elementType == .float32 ? unit * reachBias[j] : 0)
          nextShift[index] =
            (fromShift[index] + fromMove[index] + fromPointRounding[index] + biasMove) * Self.slack
          if abs(z[index]) <= nextShift[index] + 2 * zBound[index] { return true }
        }
      }
      shift = nextShift
    }
    return false
  }

  /// The activations of hidden layer `hidden` the last forward pass left in the workspace.
  static func cachedActivations(
    network: DenseNetwork, workspace: BatchWorkspace, buffers: DenseBuffers, hidden: Int,
    batch: Int
  ) -> [Double] {
    let start = buffers.activationsStart + buffers.activationOffset(hidden: hidden)
    let range = start..<(start + batch * network.widths[hidden])
    return network.elementType == .float64
      ? Array(workspace.cache[0][range]) : workspace.floatCache[0][range].map { Double($0) }
  }

  /// γ_n for unit roundoff `unit`.
  static func gamma(_ n: Int, _ unit: Double) -> Double {
    let nu = Double(n) * unit
    return nu / (1 - nu)
  }

  /// op(a)·op(b) as a new `rows × columns` array, in Float64 through BLAS.
  static func product(
    _ a: [Double], _ transposeA: Transpose, _ b: [Double], _ transposeB: Transpose,
    _ rows: Int, _ columns: Int, _ inner: Int
  ) -> [Double] {
    var c = [Double](repeating: 0, count: rows * columns)
    BLAS.multiply(
      a, transposeA, b, transposeB, into: &c, rows: rows, columns: columns, inner: inner)
    return c
  }
}
