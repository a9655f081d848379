/// Where a dense network keeps its per-batch buffers inside a workspace's flat
/// caches, for a given batch capacity: regions are fixed by the capacity, and
/// a smaller batch uses the first rows of each.
///
/// `cache[0]` (Float64 networks): the hidden layers' activations, one region
/// per layer, then two scratch regions for the backward pass's gradients.
/// `floatCache[0]` (Float32 networks): the weights converted to Float, the
/// inputs, the same activation and scratch regions, the outputs, the output
/// gradient and one band of the parameter gradient (zero between uses), all in Float.
struct DenseBuffers {
  /// Fan-in rows per product in Float32 networks (see `DenseKernels`): a band
  /// of a wide layer's weights, converted, stays in cache for its product.
  static let floatBand = 128
  /// Units per layer of the network.
  let widths: [Int]
  /// Rows each region holds.
  let capacity: Int
  /// Whether the network computes in Float.
  let usesFloat: Bool

  init(network: DenseNetwork, batchCapacity: Int) {
    widths = network.widths
    capacity = batchCapacity
    usesFloat = network.elementType == .float32
  }

  /// Fan-in rows per product: whole layers in Float64.
  var band: Int { usesFloat ? Self.floatBand : Int.max }

  /// Elements of the largest band of the gradient (weights or biases).
  var gradientBandCount: Int {
    var largest = 0
    for layer in 1..<widths.count {
      largest = max(largest, min(band, widths[layer - 1]) * widths[layer])
    }
    return largest
  }

  var parameterCount: Int {
    var total = 0
    for layer in 1..<widths.count { total += (widths[layer - 1] + 1) * widths[layer] }
    return total
  }

  /// The widest hidden layer (0 without hidden layers).
  var widestHidden: Int {
    var widest = 0
    for layer in 1..<(widths.count - 1) { widest = max(widest, widths[layer]) }
    return widest
  }

  /// Where the activations of hidden layer `hidden` (1-based, like the
  /// parameter names) start, relative to the activation regions.
  func activationOffset(hidden: Int) -> Int {
    var offset = 0
    for layer in 1..<hidden { offset += capacity * widths[layer] }
    return offset
  }

  /// Elements of all hidden layers' activations.
  var activationCount: Int { activationOffset(hidden: widths.count - 1) }
  /// Elements of one scratch region.
  var scratchCount: Int { capacity * widestHidden }

  /// Offsets inside the cache in use (Double or Float).
  var weightsStart: Int { 0 }
  var inputsStart: Int { usesFloat ? parameterCount : 0 }
  var activationsStart: Int { usesFloat ? inputsStart + capacity * widths[0] : 0 }
  var firstScratchStart: Int { activationsStart + activationCount }
  var secondScratchStart: Int { firstScratchStart + scratchCount }
  var outputsStart: Int { secondScratchStart + scratchCount }
  var outputGradientStart: Int { outputsStart + capacity * widths[widths.count - 1] }
  var gradientStart: Int { outputGradientStart + capacity * widths[widths.count - 1] }

  /// Length of `cache[0]`.
  var doubleCount: Int { usesFloat ? 0 : secondScratchStart + scratchCount }
  /// Length of `floatCache[0]`.
  var floatCount: Int { usesFloat ? gradientStart + gradientBandCount : 0 }
}
