import Testing

@testable import TrainingMath

@Suite struct BorrowedValuesTests {
  /// Runs `body` with `parts` borrowed in place, as a receive buffer's frames are.
  func borrowing<Result>(_ parts: [[Double]], _ body: (BorrowedValues) -> Result) -> Result {
    let buffers = parts.map { part -> UnsafeMutableBufferPointer<Double> in
      let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: part.count)
      _ = buffer.initialize(from: part)
      return buffer
    }
    defer { for buffer in buffers { buffer.deallocate() } }
    return body(BorrowedValues(unsafeParts: buffers.map { UnsafeBufferPointer($0) }))
  }

  @Test func partsComeInOrderWithTheirOffsets() {
    let parts: [[Double]] = [[0.5, 1.5], [2.5], [3.5, 4.5, 5.5]]
    let seen = borrowing(parts) { values in
      var seen: [(offset: Int, values: [Double])] = []
      values.forEachPart { offset, part in seen.append((offset, Array(part))) }
      #expect(values.count == 6)
      return seen
    }
    #expect(seen.map(\.offset) == [0, 2, 3])
    #expect(seen.map(\.values) == parts)
    borrowing([]) { values in
      #expect(values.count == 0)
      #expect(values.copied().isEmpty)
    }
  }

  /// A copy is the values, in order, and stays when the buffer changes under it.
  @Test func aCopyOutlivesTheBuffer() {
    var buffer: [Double] = [1, 2, 3, 4, 5]
    let (copy, appended) = buffer.withUnsafeMutableBufferPointer { buffer in
      let values = BorrowedValues(unsafeParts: [
        UnsafeBufferPointer(rebasing: buffer[0..<2]), UnsafeBufferPointer(rebasing: buffer[2...]),
      ])
      let copy = values.copied()
      var appended: [Double] = [-1]
      values.append(to: &appended)
      buffer.update(repeating: .nan)  // the receive buffer reused
      return (copy, appended)
    }
    #expect(copy == [1, 2, 3, 4, 5])
    #expect(appended == [-1, 1, 2, 3, 4, 5])
    #expect(buffer.allSatisfy { $0.isNaN })
  }

  /// Applied part by part, a gradient updates the weights bit for bit as the
  /// same gradient in one array does, whatever the parts' boundaries.
  @Test(arguments: [OptimizerKind.sgd, .momentum, .adam])
  func applyingPartsEqualsApplyingTheArray(kind: OptimizerKind) throws {
    let settings = try OptimizerSettings(kind: kind, learningRate: 0.01)
    let gradient: [Double] = [0.3, -0.1, 2, 1e-7, -4, 0.25]
    let parts = [Array(gradient[0..<1]), Array(gradient[1..<4]), Array(gradient[4...])]
    var (whole, optimizerWhole) = (
      [0.5, -0.5, 1, 2, 3, 4], Optimizer(settings: settings, parameterCount: 6)
    )
    var (inParts, optimizerInParts) = (whole, optimizerWhole)
    for _ in 0..<3 {
      optimizerWhole.apply(gradient: gradient, to: &whole)
      borrowing(parts) { optimizerInParts.apply(gradient: $0, to: &inParts) }
    }
    #expect(inParts == whole)
    #expect(optimizerInParts == optimizerWhole)
    // Float32 tensors too: a part may end inside a tensor and span two.
    let layout = [
      TensorSpec(name: "a", count: 2), TensorSpec(name: "h", count: 3, elementType: .float32),
      TensorSpec(name: "b", count: 1),
    ]
    var storeWhole = ParameterStore(layout: layout, values: [0.5, -0.5, 1, 2, 3, 4])
    var storeInParts = storeWhole
    optimizerWhole = Optimizer(settings: settings, parameterCount: 6)
    optimizerInParts = optimizerWhole
    for _ in 0..<3 {
      storeWhole.apply(&optimizerWhole, gradient: gradient)
      borrowing(parts) { storeInParts.apply(&optimizerInParts, gradient: $0) }
    }
    #expect(storeInParts == storeWhole)
    #expect(optimizerInParts == optimizerWhole)
  }
}
