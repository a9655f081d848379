/// The protocol's forward and backward passes: Float64 networks run the
/// kernels on the workspace's Double buffers directly; Float32 networks
/// convert the weights (once, band by band in `forward`) and the batch into
/// Float buffers in `workspace.floatCache`, run the same kernels in Float, and
/// convert the outputs and the gradient (band by band) back to Double.
extension DenseNetwork {
  public func forward(weights: [Double], workspace: BatchWorkspace) {
    let buffers = checkedBuffers(weights: weights, workspace: workspace)
    let batch = workspace.batchSize
    guard batch > 0 else { return }
    weights.withUnsafeBufferPointer { weights in
      workspace.inputs.withUnsafeBufferPointer { inputs in
        workspace.outputs.withUnsafeMutableBufferPointer { outputs in
          if elementType == .float64 {
            workspace.cache[0].withUnsafeMutableBufferPointer { cache in
              DenseKernels.forward(
                buffers: buffers, activation: activation, batch: batch, weights: weights,
                inputs: inputs, activations: cache, outputs: outputs, prepareWeights: { _ in })
            }
          } else {
            workspace.floatCache[0].withUnsafeMutableBufferPointer { cache in
              let floatWeights = UnsafeMutableBufferPointer(
                rebasing: cache[buffers.weightsStart..<(buffers.weightsStart + parameterCount)])
              let floatInputs = convert(
                UnsafeBufferPointer(rebasing: inputs[0..<(batch * inputCount)]), into: cache,
                at: buffers.inputsStart)
              let activations = UnsafeMutableBufferPointer(
                rebasing: cache[buffers.activationsStart..<buffers.firstScratchStart])
              let floatOutputs = UnsafeMutableBufferPointer(
                rebasing: cache[buffers.outputsStart..<buffers.outputGradientStart])
              DenseKernels.forward(
                buffers: buffers, activation: activation, batch: batch,
                weights: UnsafeBufferPointer(floatWeights), inputs: floatInputs,
                activations: activations, outputs: floatOutputs,
                prepareWeights: { band in
                  DenseKernels.convert(
                    UnsafeBufferPointer(rebasing: weights[band]),
                    into: UnsafeMutableBufferPointer(rebasing: floatWeights[band]))
                })
              DenseKernels.convert(
                UnsafeBufferPointer(rebasing: floatOutputs[0..<(batch * outputCount)]),
                into: outputs)
            }
          }
        }
      }
    }
  }

  /// Float32 networks reuse the Float weights `forward` converted at the same weights.
  public func backward(weights: [Double], workspace: BatchWorkspace, gradient: inout [Double]) {
    let buffers = checkedBuffers(weights: weights, workspace: workspace)
    precondition(gradient.count == parameterCount, "gradient has \(gradient.count) elements")
    let batch = workspace.batchSize
    guard batch > 0 else {
      for index in gradient.indices { gradient[index] = 0 }
      return
    }
    weights.withUnsafeBufferPointer { weights in
      workspace.inputs.withUnsafeBufferPointer { inputs in
        workspace.outputGradient.withUnsafeBufferPointer { outputGradient in
          gradient.withUnsafeMutableBufferPointer { gradient in
            if elementType == .float64 {
              workspace.cache[0].withUnsafeMutableBufferPointer { cache in
                DenseKernels.backward(
                  buffers: buffers, activation: activation, batch: batch, weights: weights,
                  inputs: inputs,
                  activations: UnsafeBufferPointer(
                    rebasing: cache[buffers.activationsStart..<buffers.firstScratchStart]),
                  outputGradient: outputGradient, scratch: scratchRegions(cache, buffers),
                  gradientBuffer: { UnsafeMutableBufferPointer(rebasing: gradient[$0]) },
                  gradientBuffersAreZero: false, finishGradient: { _ in })
              }
            } else {
              workspace.floatCache[0].withUnsafeMutableBufferPointer { cache in
                let floatBand = UnsafeMutableBufferPointer(
                  rebasing: cache[buffers.gradientStart..<buffers.floatCount])
                DenseKernels.backward(
                  buffers: buffers, activation: activation, batch: batch,
                  weights: UnsafeBufferPointer(
                    rebasing: cache[buffers.weightsStart..<(buffers.weightsStart + parameterCount)]),
                  inputs: UnsafeBufferPointer(
                    rebasing: cache[buffers.inputsStart..<buffers.activationsStart]),
                  activations: UnsafeBufferPointer(
                    rebasing: cache[buffers.activationsStart..<buffers.firstScratchStart]),
                  outputGradient: convert(
                    UnsafeBufferPointer(rebasing: outputGradient[0..<(batch * outputCount)]),
                    into: cache, at: buffers.outputGradientStart),
                  scratch: scratchRegions(cache, buffers),
                  gradientBuffer: { UnsafeMutableBufferPointer(rebasing: floatBand[0..<$0.count]) },
                  gradientBuffersAreZero: true,
                  finishGradient: { band in
                    DenseKernels.moveConverting(
                      UnsafeMutableBufferPointer(rebasing: floatBand[0..<band.count]),
                      into: UnsafeMutableBufferPointer(rebasing: gradient[band]))
                  })
              }
            }
          }
        }
      }
    }
  }

  /// The cache layout for `workspace`, after checking that the weights and the
  /// workspace belong to this network.
  func checkedBuffers(weights: [Double], workspace: BatchWorkspace) -> DenseBuffers {
    precondition(weights.count == parameterCount, "weights have \(weights.count) elements")
    let buffers = DenseBuffers(network: self, batchCapacity: workspace.batchCapacity)
    // Counts through indices, not `first`: an unspecialized `first` allocates in debug builds.
    let doubles = workspace.cache.isEmpty ? 0 : workspace.cache[0].count
    let floats = workspace.floatCache.isEmpty ? 0 : workspace.floatCache[0].count
    precondition(
      workspace.inputCount == inputCount && workspace.outputCount == outputCount
        && doubles == buffers.doubleCount && floats == buffers.floatCount,
      "the workspace was not made by this network's makeWorkspace")
    precondition(workspace.batchSize <= workspace.batchCapacity, "batch exceeds the capacity")
    return buffers
  }

  /// Copies `values` into `cache` from `start` as Float (rounding to nearest)
  /// and returns that region.
  private func convert(
    _ values: UnsafeBufferPointer<Double>, into cache: UnsafeMutableBufferPointer<Float>,
    at start: Int
  ) -> UnsafeBufferPointer<Float> {
    let region = UnsafeMutableBufferPointer(rebasing: cache[start..<(start + values.count)])
    DenseKernels.convert(values, into: region)
    return UnsafeBufferPointer(region)
  }

  /// The two scratch regions of `cache`.
  private func scratchRegions<Scalar>(
    _ cache: UnsafeMutableBufferPointer<Scalar>, _ buffers: DenseBuffers
  ) -> (UnsafeMutableBufferPointer<Scalar>, UnsafeMutableBufferPointer<Scalar>) {
    (
      UnsafeMutableBufferPointer(
        rebasing: cache[buffers.firstScratchStart..<buffers.secondScratchStart]),
      UnsafeMutableBufferPointer(
        rebasing: cache[
          buffers.secondScratchStart..<(buffers.secondScratchStart + buffers.scratchCount)])
    )
  }
}
