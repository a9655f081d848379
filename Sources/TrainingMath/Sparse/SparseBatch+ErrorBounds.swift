#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Rounding-error bounds of a sparse model's batch loss and gradient, for audits
// (Higham, "Accuracy and Stability of Numerical Algorithms", ch. 3: a sum of n
// rounded products is within γ(n + 1)·Σ|terms|).

extension SparseModelSpec {
  /// A bound on the rounding error of `score(ofBatchRow:...)`: with n nonzeros
  /// and F factors, the linear part b + Σ w·x is within γ(n + 2)·L, L = |b| +
  /// Σ|w·x|; each factor sum S_f within γ(n + 1)·A_f, A_f = Σ|v_f·x|, so
  /// Σ S_f² and Σ (v·x)² (both at most M = Σ_f A_f²) within γ(n(F + 2) + F + 4)·M;
  /// the halving is exact and the last two operations add u each. All told
  /// γ(n(F + 2) + F + 8)·(L + M).
  func scoreErrorBound(
    ofBatchRow index: Int, in batch: SparseBatch, data: SparseDataset, values: [Double]
  ) -> (bound: Double, factorAbsoluteSums: [Double]) {
    let width = rowWidth
    let factors = width - 1
    let start = batch.nonzeroStarts[index]
    let dataStart = data.rowStarts[batch.rows[index]]
    let nonzeros = batch.nonzeroStarts[index + 1] - start
    var linear = abs(values[batch.biasPosition * width])
    var absoluteSums = [Double](repeating: 0, count: factors)
    for offset in 0..<nonzeros {
      let x = data.values[dataStart + offset]
      let base = Int(batch.keyPositions[start + offset]) * width
      linear += abs(values[base] * x)
      for f in 0..<factors { absoluteSums[f] += abs(values[base + 1 + f] * x) }
    }
    var squares = 0.0
    for f in 0..<factors { squares += absoluteSums[f] * absoluteSums[f] }
    let operations = nonzeros * (factors + 2) + factors + 8
    return (Rounding.gamma(operations) * (linear + squares) * (1 + 8 * Rounding.unit), absoluteSums)
  }

  /// The mean log loss of the batch at `values` with a bound on its rounding
  /// error. Per row: the score's error δ moves the loss by at most
  /// min(1, |p̂ − y| + δ/4 + 4u)·δ (|dℓ/dz| = |σ(z) − y| and σ' ≤ 1/4); the loss's
  /// own exp, log1p, add and subtract stay within 8u·(|z| + 1) + 2u·ℓ. The mean
  /// adds γ(B)·Σℓ and u·mean, as `Objective.boundedLoss`.
  public func boundedLoss(of batch: SparseBatch, data: SparseDataset, values: [Double])
    -> BoundedValue
  {
    let u = Rounding.unit
    var sums = [Double](repeating: 0, count: rowWidth - 1)
    var total = 0.0
    var bound = 0.0
    for index in batch.rows.indices {
      let z = score(ofBatchRow: index, in: batch, data: data, values: values, factorSums: &sums)
      let label = data.labels[batch.rows[index]]
      let loss = BinaryLogLoss.loss(score: z, label: label)
      total += loss
      let delta = scoreErrorBound(ofBatchRow: index, in: batch, data: data, values: values).bound
      let slope = min(1, abs(BinaryLogLoss.probability(score: z) - label) + delta / 4 + 4 * u)
      bound += (slope * delta + 8 * u * (abs(z) + 1) + 2 * u * loss) * (1 + 4 * u)
    }
    let count = batch.rows.count
    let mean = total / Double(count)
    let summation = Rounding.gamma(count) * total
    return BoundedValue(
      value: mean, bound: (bound + summation) / Double(count) + Rounding.unit * mean)
  }

  /// Per coordinate of `lossAndGradient`'s gradient (`rowWidth` per key): a bound
  /// on its rounding error, and on |∂loss/∂value| anywhere within `step` (in
  /// each coordinate) of `values`, for finite differences' step errors.
  ///
  /// Per row, the residual δ = (σ(z) − y)/B is within ε = (6u·p̂ + δ_z/4)/B +
  /// 3u·|δ̂| (δ_z the score's bound); a weight's term δ·x within ε|x| + u|δx|;
  /// a factor's term δ·x·(S_f − v·x) within ε|x·c| + |δx|·γ(n + 4)·A_f + 3u|t|.
  /// A coordinate summing m terms adds γ(m)·Σ|terms|. Magnitudes: |σ − y| ≤ 1, so
  /// a weight's is the mean Σ|x| and a factor's the mean Σ|x|·(A_f + 2·step·Σ|x|).
  public func gradientBounds(
    of batch: SparseBatch, data: SparseDataset, values: [Double], step: Double
  ) -> GradientBounds {
    let u = Rounding.unit
    let width = rowWidth
    let factors = width - 1
    let coordinates = batch.keys.count * width
    var errors = [Double](repeating: 0, count: coordinates)
    var absolute = [Double](repeating: 0, count: coordinates)
    var terms = [Int](repeating: 0, count: coordinates)
    var magnitude = [Double](repeating: 0, count: coordinates)
    var sums = [Double](repeating: 0, count: factors)
    let scale = 1 / Double(batch.rows.count)
    func add(_ coordinate: Int, _ term: Double, error: Double, size: Double) {
      errors[coordinate] += error
      absolute[coordinate] += abs(term)
      terms[coordinate] += 1
      magnitude[coordinate] += size
    }
    for index in batch.rows.indices {
      let label = data.labels[batch.rows[index]]
      let z = score(ofBatchRow: index, in: batch, data: data, values: values, factorSums: &sums)
      let (scoreBound, absoluteSums) = scoreErrorBound(
        ofBatchRow: index, in: batch, data: data, values: values)
      let probability = BinaryLogLoss.probability(score: z)
      let delta = (probability - label) * scale
      let deltaError =
        (scale * (6 * u * probability + scoreBound / 4) + 3 * u * abs(delta)) * (1 + 4 * u)
      add(batch.biasPosition * width, delta, error: deltaError, size: scale)
      let start = batch.nonzeroStarts[index]
      let dataStart = data.rowStarts[batch.rows[index]]
      let nonzeros = batch.nonzeroStarts[index + 1] - start
      var rowAbsolute = 0.0
      for offset in 0..<nonzeros { rowAbsolute += abs(data.values[dataStart + offset]) }
      let sumRounding = Rounding.gamma(nonzeros + 4)
      for offset in 0..<nonzeros {
        let x = data.values[dataStart + offset]
        let base = Int(batch.keyPositions[start + offset]) * width
        let deltaX = delta * x
        add(
          base, deltaX, error: (deltaError * abs(x) + u * abs(deltaX)) * (1 + 2 * u),
          size: scale * abs(x))
        for f in 0..<factors {
          let c = sums[f] - values[base + 1 + f] * x
          let term = deltaX * c
          let error =
            (deltaError * abs(x * c) + abs(deltaX) * sumRounding * absoluteSums[f]
              + 3 * u * abs(term)) * (1 + Rounding.gamma(4))
          add(
            base + 1 + f, term, error: error,
            size: scale * abs(x) * (absoluteSums[f] + 2 * step * rowAbsolute))
        }
      }
    }
    var rounding = [Double](repeating: 0, count: coordinates)
    for coordinate in 0..<coordinates {
      rounding[coordinate] =
        (errors[coordinate] + Rounding.gamma(terms[coordinate]) * absolute[coordinate])
        * (1 + Rounding.gamma(2))
      magnitude[coordinate] *= 1 + Rounding.gamma(terms[coordinate] + 4)
    }
    return GradientBounds(rounding: rounding, magnitude: magnitude)
  }
}
