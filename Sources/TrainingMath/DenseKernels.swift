import BLAS

/// The batched forward and backward passes of a dense network in one element
/// type, on buffers the caller owns: one `BLAS.multiply` per layer and pass,
/// plus fused loops for the bias, the activation and its derivative. Nothing
/// here allocates.
enum DenseKernels {
  /// Runs `batch` rows of `inputs` through the layers: each hidden layer's
  /// activations go to its region of `activations` (laid out by `buffers`),
  /// the last layer's outputs (no activation) to `outputs`.
  static func forward<Scalar: NetworkScalar>(
    buffers: DenseBuffers, activation: Activation, batch: Int,
    weights: UnsafeBufferPointer<Scalar>, inputs: UnsafeBufferPointer<Scalar>,
    activations: UnsafeMutableBufferPointer<Scalar>, outputs: UnsafeMutableBufferPointer<Scalar>
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
      BLAS.multiply(
        previous, .none, UnsafeBufferPointer(rebasing: weights[weightOffset..<biasOffset]), .none,
        into: destination, rows: batch, columns: fanOut, inner: fanIn)
      let bias = UnsafeBufferPointer(rebasing: weights[biasOffset..<(biasOffset + fanOut)])
      addBias(
        bias, to: destination, rows: batch, then: layer == layers ? nil : activation)
      previous = UnsafeBufferPointer(destination)
      weightOffset = biasOffset + fanOut
    }
  }

  /// Writes into `gradient` the gradient of the batch's mean loss: starts
  /// from `outputGradient` (per example, scaled by 1/batch on the way) and,
  /// layer by layer from the last, dW = Aᵀ·dZ, db = column sums of dZ and
  /// dA = dZ·Wᵀ masked by the activation's derivative, alternating between
  /// the two scratch regions. Reuses the activations `forward` left.
  static func backward<Scalar: NetworkScalar>(
    buffers: DenseBuffers, activation: Activation, batch: Int,
    weights: UnsafeBufferPointer<Scalar>, inputs: UnsafeBufferPointer<Scalar>,
    activations: UnsafeBufferPointer<Scalar>, outputGradient: UnsafeBufferPointer<Scalar>,
    scratch: (UnsafeMutableBufferPointer<Scalar>, UnsafeMutableBufferPointer<Scalar>),
    gradient: UnsafeMutableBufferPointer<Scalar>
  ) {
    let widths = buffers.widths
    let layers = widths.count - 1
    var scale = 1 / Scalar(batch)
    var delta = UnsafeBufferPointer(rebasing: outputGradient[0..<(batch * widths[layers])])
    var weightEnd = gradient.count
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
      BLAS.multiply(
        previous, .transposed, delta, .none,
        into: UnsafeMutableBufferPointer(rebasing: gradient[weightOffset..<biasOffset]),
        rows: fanIn, columns: fanOut, inner: batch, alpha: scale)
      sumColumns(
        delta, rows: batch, scale: scale,
        into: UnsafeMutableBufferPointer(rebasing: gradient[biasOffset..<weightEnd]))
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
}
