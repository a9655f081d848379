import BLAS

/// The batched forward and backward passes of a dense network in one element
/// type, on buffers the caller owns: matrix products through `BLAS`, plus
/// fused loops for the bias, the activation and its derivative. Nothing here
/// allocates.
///
/// Products over a layer's weights run in bands of `buffers.band` fan-in rows.
/// A Float32 network converts each band of weights just before its product
/// (`prepareWeights`) and each band of the gradient just after
/// (`finishGradient`), while the band is still in cache; a Float64 network
/// uses one band per layer and does nothing in either.
enum DenseKernels {
  /// Runs `batch` rows of `inputs` through the layers: each hidden layer's
  /// activations go to its region of `activations` (laid out by `buffers`),
  /// the last layer's outputs (no activation) to `outputs`. Calls
  /// `prepareWeights` with each range of `weights` before reading it.
  static func forward<Scalar: NetworkScalar>(
    buffers: DenseBuffers, activation: Activation, batch: Int,
    weights: UnsafeBufferPointer<Scalar>, inputs: UnsafeBufferPointer<Scalar>,
    activations: UnsafeMutableBufferPointer<Scalar>, outputs: UnsafeMutableBufferPointer<Scalar>,
    prepareWeights: (Range<Int>) -> Void
  ) {
    let widths = buffers.widths
    let layers = widths.count - 1
    var previous = UnsafeBufferPointer(rebasing: inputs[0..<(batch * widths[0])])
    var weightOffset = 0
    for layer in 1...layers {
      let (fanIn, fanOut) = (widths[layer - 1], widths[layer])
      let biasOffset = weightOffset + fanIn * fanOut
      let destination: UnsafeMutableBufferPointer<Scalar>
      if layer == layers {
        destination = UnsafeMutableBufferPointer(rebasing: outputs[0..<(batch * fanOut)])
      } else {
        let start = buffers.activationOffset(hidden: layer)
        destination = UnsafeMutableBufferPointer(
          rebasing: activations[start..<(start + batch * fanOut)])
      }
      var first = 0
      while first < fanIn {
        let last = min(first + buffers.band, fanIn)
        let band = (weightOffset + first * fanOut)..<(weightOffset + last * fanOut)
        prepareWeights(band)
        BLAS.multiply(
          UnsafeBufferPointer(rebasing: previous[first...]), .none, strideA: fanIn,
          UnsafeBufferPointer(rebasing: weights[band]), .none, into: destination, rows: batch,
          columns: fanOut, inner: last - first, beta: first == 0 ? 0 : 1)
        first = last
      }
      let biasRange = biasOffset..<(biasOffset + fanOut)
      prepareWeights(biasRange)
      addBias(
        UnsafeBufferPointer(rebasing: weights[biasRange]), to: destination, rows: batch,
        then: layer == layers ? nil : activation)
      previous = UnsafeBufferPointer(destination)
      weightOffset = biasRange.upperBound
    }
  }

  /// Writes the gradient of the batch's mean loss: starts from
  /// `outputGradient` (per example, scaled by 1/batch on the way) and, layer
  /// by layer from the last, dW = Aᵀ·dZ, db = column sums of dZ and
  /// dA = dZ·Wᵀ masked by the activation's derivative, alternating between
  /// the two scratch regions. Reuses the weights and activations `forward`
  /// left. Each range of the gradient is written into the buffer
  /// `gradientBuffer` gives for it (exactly as long), then `finishGradient` is
  /// called; when `gradientBuffersAreZero`, the buffers hold zeros on entry
  /// (`finishGradient` must leave them so) and products add into them.
  static func backward<Scalar: NetworkScalar>(
    buffers: DenseBuffers, activation: Activation, batch: Int,
    weights: UnsafeBufferPointer<Scalar>, inputs: UnsafeBufferPointer<Scalar>,
    activations: UnsafeBufferPointer<Scalar>, outputGradient: UnsafeBufferPointer<Scalar>,
    scratch: (UnsafeMutableBufferPointer<Scalar>, UnsafeMutableBufferPointer<Scalar>),
    gradientBuffer: (Range<Int>) -> UnsafeMutableBufferPointer<Scalar>,
    gradientBuffersAreZero: Bool, finishGradient: (Range<Int>) -> Void
  ) {
    // Accumulating into buffers known to be zero spares BLAS its pass that zeroes them.
    let weightBeta: Scalar = gradientBuffersAreZero ? 1 : 0
    let widths = buffers.widths
    let layers = widths.count - 1
    var scale = 1 / Scalar(batch)
    var delta = UnsafeBufferPointer(rebasing: outputGradient[0..<(batch * widths[layers])])
    var weightEnd = buffers.parameterCount
    var useFirstScratch = true
    for layer in stride(from: layers, through: 1, by: -1) {
      let (fanIn, fanOut) = (widths[layer - 1], widths[layer])
      let biasOffset = weightEnd - fanOut
      let weightOffset = biasOffset - fanIn * fanOut
      let previous: UnsafeBufferPointer<Scalar>
      if layer == 1 {
        previous = UnsafeBufferPointer(rebasing: inputs[0..<(batch * fanIn)])
      } else {
        let start = buffers.activationOffset(hidden: layer - 1)
        previous = UnsafeBufferPointer(rebasing: activations[start..<(start + batch * fanIn)])
      }
      var first = 0
      while first < fanIn {
        let last = min(first + buffers.band, fanIn)
        let band = (weightOffset + first * fanOut)..<(weightOffset + last * fanOut)
        BLAS.multiply(
          UnsafeBufferPointer(rebasing: previous[first...]), .transposed, strideA: fanIn, delta,
          .none, into: gradientBuffer(band), rows: last - first, columns: fanOut, inner: batch,
          alpha: scale, beta: weightBeta)
        finishGradient(band)
        first = last
      }
      let biasRange = biasOffset..<weightEnd
      sumColumns(delta, rows: batch, scale: scale, into: gradientBuffer(biasRange))
      finishGradient(biasRange)
      if layer > 1 {
        let target = useFirstScratch ? scratch.0 : scratch.1
        let destination = UnsafeMutableBufferPointer(rebasing: target[0..<(batch * fanIn)])
        BLAS.multiply(
          delta, .none, UnsafeBufferPointer(rebasing: weights[weightOffset..<biasOffset]),
          .transposed, into: destination, rows: batch, columns: fanIn, inner: fanOut,
          alpha: scale)
        multiplyByDerivative(destination, activations: previous, activation: activation)
        delta = UnsafeBufferPointer(destination)
        useFirstScratch.toggle()
      }
      scale = 1
      weightEnd = weightOffset
    }
  }

  /// z ← z + bias on every row, then f(z) when `activation` is set: one pass.
  /// The loops run on raw row pointers (no overflow checks), so they vectorize.
  @inline(__always)
  static func addBias<Scalar: NetworkScalar>(
    _ bias: UnsafeBufferPointer<Scalar>, to z: UnsafeMutableBufferPointer<Scalar>, rows: Int,
    then activation: Activation?
  ) {
    let columns = bias.count
    guard rows > 0, columns > 0, let biasStart = bias.baseAddress, let start = z.baseAddress
    else { return }
    precondition(z.count >= rows * columns, "z shorter than rows × bias")
    for rowIndex in 0..<rows {
      let row = start + rowIndex * columns
      switch activation {
      case nil:
        for j in 0..<columns { row[j] += biasStart[j] }
      case .relu:
        for j in 0..<columns { row[j] = max(row[j] + biasStart[j], 0) }
      case .some(let activation):
        for j in 0..<columns { row[j] = activation.apply(row[j] + biasStart[j]) }
      }
    }
  }

  /// gradient[j] ← scale · Σ_rows delta[row, j].
  @inline(__always)
  static func sumColumns<Scalar: NetworkScalar>(
    _ delta: UnsafeBufferPointer<Scalar>, rows: Int, scale: Scalar,
    into gradient: UnsafeMutableBufferPointer<Scalar>
  ) {
    let columns = gradient.count
    guard columns > 0, let sums = gradient.baseAddress else { return }
    precondition(delta.count >= rows * columns, "delta shorter than rows × columns")
    for j in 0..<columns { sums[j] = 0 }
    if rows > 0, let start = delta.baseAddress {
      for rowIndex in 0..<rows {
        let row = start + rowIndex * columns
        for j in 0..<columns { sums[j] += row[j] }
      }
    }
    for j in 0..<columns { sums[j] *= scale }
  }

  /// dA ← dA ⊙ f'(z), with f'(z) from the activations a = f(z).
  @inline(__always)
  static func multiplyByDerivative<Scalar: NetworkScalar>(
    _ delta: UnsafeMutableBufferPointer<Scalar>, activations: UnsafeBufferPointer<Scalar>,
    activation: Activation
  ) {
    let count = delta.count
    guard count > 0, let d = delta.baseAddress, let a = activations.baseAddress else { return }
    precondition(activations.count >= count, "fewer activations than gradients")
    switch activation {
    case .relu:
      for index in 0..<count {
        let slope: Scalar = a[index] > 0 ? 1 : 0
        d[index] *= slope
      }
    case .tanh:
      for index in 0..<count { d[index] *= 1 - a[index] * a[index] }
    case .sigmoid:
      for index in 0..<count { d[index] *= a[index] * (1 - a[index]) }
    }
  }

  /// destination[i] ← source[i] converted (rounded to nearest), for every i of `source`.
  @inline(__always)
  static func convert<Source: BinaryFloatingPoint, Destination: BinaryFloatingPoint>(
    _ source: UnsafeBufferPointer<Source>, into destination: UnsafeMutableBufferPointer<Destination>
  ) {
    precondition(destination.count >= source.count, "conversion target too short")
    for index in 0..<source.count { destination[index] = Destination(source[index]) }
  }

  /// destination[i] ← source[i] converted, then source[i] ← 0: the Float
  /// gradient band goes out as Double and is left zero for the next product.
  @inline(__always)
  static func moveConverting<Source: BinaryFloatingPoint, Destination: BinaryFloatingPoint>(
    _ source: UnsafeMutableBufferPointer<Source>,
    into destination: UnsafeMutableBufferPointer<Destination>
  ) {
    precondition(destination.count >= source.count, "conversion target too short")
    for index in 0..<source.count {
      destination[index] = Destination(source[index])
      source[index] = 0
    }
  }
}
