/// A reference implementation of the passes in plain Swift loops over arrays,
/// always in Float64, written to be read rather than to be fast: the tests
/// compare the BLAS passes with it, and `pstrain bench model` times the two in
/// the same run. It allocates freely.
extension DenseNetwork {
  /// The forward pass over the batch in `workspace`: writes
  /// `workspace.outputs` and returns every layer's activations for
  /// `naiveBackward` (index 0 the inputs, the last the outputs), each
  /// `batchSize × width`, row-major.
  public func naiveForward(weights: [Double], workspace: BatchWorkspace) -> [[Double]] {
    precondition(weights.count == parameterCount, "weights have \(weights.count) elements")
    let batch = workspace.batchSize
    var layers = [Array(workspace.inputs[0..<(batch * inputCount)])]
    var offset = 0
    for layer in 1...layerCount {
      let (fanIn, fanOut) = (widths[layer - 1], widths[layer])
      let biasOffset = offset + fanIn * fanOut
      let previous = layers[layer - 1]
      var next = [Double](repeating: 0, count: batch * fanOut)
      for row in 0..<batch {
        for j in 0..<fanOut {
          var z = weights[biasOffset + j]
          for i in 0..<fanIn { z += previous[row * fanIn + i] * weights[offset + i * fanOut + j] }
          next[row * fanOut + j] = layer == layerCount ? z : activation.value(z)
        }
      }
      layers.append(next)
      offset = biasOffset + fanOut
    }
    for index in 0..<(batch * outputCount) { workspace.outputs[index] = layers[layerCount][index] }
    return layers
  }

  /// The gradient of the batch's mean loss by backpropagation, from the
  /// per-example output gradients in `workspace.outputGradient` and the
  /// activations `naiveForward` returned; overwrites `gradient`.
  public func naiveBackward(
    weights: [Double], workspace: BatchWorkspace, activations: [[Double]],
    gradient: inout [Double]
  ) {
    precondition(gradient.count == parameterCount, "gradient has \(gradient.count) elements")
    let batch = workspace.batchSize
    for index in gradient.indices { gradient[index] = 0 }
    guard batch > 0 else { return }
    var delta = (0..<(batch * outputCount)).map { workspace.outputGradient[$0] / Double(batch) }
    var end = parameterCount
    for layer in stride(from: layerCount, through: 1, by: -1) {
      let (fanIn, fanOut) = (widths[layer - 1], widths[layer])
      let biasOffset = end - fanOut
      let offset = biasOffset - fanIn * fanOut
      let previous = activations[layer - 1]
      var previousDelta = [Double](repeating: 0, count: batch * fanIn)
      for row in 0..<batch {
        for j in 0..<fanOut {
          let d = delta[row * fanOut + j]
          gradient[biasOffset + j] += d
          for i in 0..<fanIn {
            gradient[offset + i * fanOut + j] += previous[row * fanIn + i] * d
            previousDelta[row * fanIn + i] += d * weights[offset + i * fanOut + j]
          }
        }
      }
      if layer > 1 {
        for index in previousDelta.indices {
          previousDelta[index] *= activation.derivative(output: previous[index])
        }
      }
      delta = previousDelta
      end = offset
    }
  }
}
