import TrainingMath

// Tensors: the model descriptor `join` carries (and checkpoints), named tensors
// with their values (parameters, gradients, weights), and the names both use.
// Tensors decode into storage at hand, or, for a push, are read in place.

/// Which model a peer computes with: its name and parameter layout. The server
/// only compares it with its own; the coordinator uses it to rebuild the loss.
public struct ModelDescriptor: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// The model's name, e.g. `chain`.
  public var name: String
  /// The parameter tensors.
  public var layout: [TensorSpec]

  /// A descriptor of model `name` with `layout`.
  public init(name: String, layout: [TensorSpec]) {
    self.name = name
    self.layout = layout
  }

  public var description: String {
    "\(name)(" + layout.map(\.description).joined(separator: ", ") + ")"
  }
}

extension ModelDescriptor {
  /// `name` model name, `u16 n` tensors, then per tensor: `name`, shape, `u8 element type`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(name, lengthAs: UInt8.self)
    sink.write(UInt16(layout.count))
    for spec in layout {
      sink.write(spec.name, lengthAs: UInt8.self)
      sink.writeShape(of: spec)
      sink.write(spec.elementType.rawValue)
    }
  }

  /// Decodes a descriptor; `withShapes: false` reads the form before shapes
  /// (`u64 elements` per tensor), as checkpoints of formats 1 and 2 hold it.
  static func decode(from reader: inout ByteReader, withShapes: Bool = true) throws(DecodeError)
    -> ModelDescriptor
  {
    let name = try reader.readName("model name")
    let count = try reader.readLayoutCount("model")
    var layout: [TensorSpec] = []
    for _ in 0..<count {
      let tensorName = try reader.readName("tensor name")
      let (rank, dimensions) =
        withShapes
        ? try reader.readShape("tensor \(tensorName)")
        : (1, SIMD4(try reader.readVectorLength("tensor \(tensorName)"), 1, 1, 1))
      let typeByte = try reader.read(UInt8.self, "tensor \(tensorName) element type")
      guard let type = ElementType(rawValue: typeByte) else {
        throw .outOfRange(
          field: "tensor \(tensorName) element type", value: String(typeByte),
          allowed: "1 (float64) or 2 (float32)")
      }
      layout.append(
        TensorSpec(name: tensorName, rank: rank, dimensions: dimensions, elementType: type))
    }
    try checkUniqueNames(layout)
    return ModelDescriptor(name: name, layout: layout)
  }
}

extension NamedTensors {
  /// `u16 n`, then per tensor: `name`, `u8 element type`, shape and
  /// the values (Float64 ones through `ByteSink.write(float64Values:)`, which
  /// may give them a frame of their own).
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(UInt16(layout.count))
    var offset = 0
    for spec in layout {
      sink.write(spec.name, lengthAs: UInt8.self)
      sink.write(spec.elementType.rawValue)
      sink.writeShape(of: spec)
      switch spec.elementType {
      case .float64:
        sink.write(float64Values: values[offset..<(offset + spec.count)])
      case .float32:
        for value in values[offset..<(offset + spec.count)] {
          sink.write(Float(value).bitPattern)
        }
      }
      offset += spec.count
    }
  }

  static func decode(from reader: inout ByteReader, _ field: @autoclosure () -> String)
    throws(DecodeError) -> NamedTensors
  {
    var tensors = NamedTensors.empty
    try decode(from: &reader, into: &tensors, field())
    return tensors
  }

  /// Decodes named tensors into `tensors`, reusing its arrays' capacity and the
  /// names and specs that are unchanged.
  static func decode(
    from reader: inout ByteReader, into tensors: inout NamedTensors,
    _ field: @autoclosure () -> String
  ) throws(DecodeError) {
    var unused: BorrowedValues?
    try decode(from: &reader, into: &tensors, borrowing: false, borrowed: &unused, field())
  }

  /// Decodes named tensors as above; with `borrowing`, when every tensor is
  /// Float64 with its values in an aligned frame of their own, the values are
  /// checked where they are and not copied: `borrowed` gets them (valid as
  /// `BorrowedValues` says), and `tensors` gets the layout and no values.
  ///
  /// One pass copies values into the storage at hand while they fit. From the
  /// first tensor that does not fit (or that may be read in place) on, values
  /// are skipped and read in a second pass once the whole layout is known: into
  /// new storage sized once, so a larger message is not zero-filled first, or
  /// where they are.
  static func decode(
    from reader: inout ByteReader, into tensors: inout NamedTensors, borrowing: Bool,
    borrowed: inout BorrowedValues?, _ field: @autoclosure () -> String
  ) throws(DecodeError) {
    borrowed = nil
    let count = try reader.readLayoutCount(field())
    // Take the arrays out so that they are uniquely referenced while written.
    var layout = tensors.layout
    var values = tensors.values
    tensors = .empty
    if layout.count != count {
      layout.removeAll(keepingCapacity: true)
      layout.reserveCapacity(count)
    }
    var total = 0
    var deferred: DeferredValues?
    #if _endian(little)
      var inPlace = borrowing
    #else
      var inPlace = false
    #endif
    for position in 0..<count {
      let header = reader.position
      let previous = position < layout.count ? layout[position] : nil
      let name = try reader.readName(reusing: previous?.name, "\(field()) tensor name")
      let tag = try reader.read(UInt8.self, "\(field()) \(name) element type")
      guard let type = ElementType(rawValue: tag) else {
        throw .outOfRange(
          field: "\(field()) \(name) element type", value: String(tag),
          allowed: "1 (float64) or 2 (float32)")
      }
      let (rank, dimensions) = try reader.readShape("\(field()) \(name)")
      let elements = UInt64(dimensions[0] * dimensions[1] * dimensions[2] * dimensions[3])
      let (byteCount, overflow) = Int(clamping: elements).multipliedReportingOverflow(
        by: type.byteCount)
      let ownFrame = try reader.enterValues(
        byteCount: overflow ? .max : byteCount, "\(field()) \(name) data")
      inPlace = inPlace && ownFrame && type == .float64 && reader.isAlignedForFloat64
      guard elements >= 1, elements <= UInt64(reader.remaining / type.byteCount) else {
        throw .truncated(
          field: "\(field()) \(name) data",
          needed: Int(clamping: elements) &* type.byteCount, remaining: reader.remaining)
      }
      let end = total + Int(elements)
      // A value that is not finite defers this tensor too: the second pass
      // reports it after any error in the rest of the layout, as it does when
      // nothing could be copied in the first pass (the storage at hand must not
      // change which error a message gets).
      if deferred == nil && !inPlace && end <= values.count
        && values.withUnsafeMutableBufferPointer({ all in
          let target = UnsafeMutableBufferPointer(rebasing: all[total..<end])
          do throws(DecodeError) {
            switch type {
            case .float64: try reader.readFiniteArray(into: target, "\(field()) \(name)")
            case .float32: try reader.readFiniteFloat32Array(into: target, "\(field()) \(name)")
            }
            return true
          } catch {
            return false
          }
        })
      {
        // Copied.
      } else {
        if deferred == nil {
          deferred = DeferredValues(header: header, element: total, position: position)
        }
        reader.skip(byteCount)
      }
      try reader.leaveValues()
      total = end
      let spec = TensorSpec(name: name, rank: rank, dimensions: dimensions, elementType: type)
      if position < layout.count {
        if layout[position] != spec { layout[position] = spec }
      } else {
        layout.append(spec)
      }
    }
    try checkUniqueNames(layout)
    if let deferred {
      if inPlace {
        reader.seek(to: deferred.header)
        borrowed = try readValuesInPlace(&reader, deferred, layout: layout, field())
        values.removeAll(keepingCapacity: true)
        // The layout without its values: only `borrowed` holds them. Built
        // apart and assigned whole: assigning `tensors` field by field slowed
        // every decode through this function by a third.
        var withoutValues = NamedTensors.empty
        withoutValues.layout = layout
        withoutValues.values = values
        tensors = withoutValues
        return
      }
      let end = reader.position
      reader.seek(to: deferred.header)
      try readDeferredValues(
        &reader, deferred, layout: layout, total: total, into: &values, field())
      reader.seek(to: end)
    } else if values.count > total {
      values.removeLast(values.count - total)
    }
    tensors = NamedTensors(layout: layout, values: values)
  }

  /// Where `decode(from:into:borrowing:borrowed:_:)` left values for a second pass: a tensor's header,
  /// its first flat element, its position in the layout.
  private struct DeferredValues {
    var header: ByteReader.Position
    var element: Int
    var position: Int
  }

  /// The second pass, when every tensor's values are in an aligned frame of
  /// their own: each checked where it is. Kept out of the decoder, whose
  /// first pass, on every message, compiles tighter without it.
  @inline(never)
  private static func readValuesInPlace(
    _ reader: inout ByteReader, _ deferred: DeferredValues, layout: [TensorSpec],
    _ field: String
  ) throws(DecodeError) -> BorrowedValues {
    var parts: [UnsafeBufferPointer<Double>] = []
    parts.reserveCapacity(layout.count)
    for spec in layout[deferred.position...] {
      skipHeader(of: spec, &reader)
      try reader.enterValues(byteCount: spec.count * 8, "\(field) \(spec.name) data")
      parts.append(try reader.readFiniteInPlace(count: spec.count, "\(field) \(spec.name)"))
      try reader.leaveValues()
    }
    return BorrowedValues(unsafeParts: parts)
  }

  /// The second pass otherwise: the deferred tensors' values copied into
  /// `values` when it holds `total` elements, or else into new storage sized
  /// once, after the values the first pass read (never zero-filled first).
  @inline(never)
  private static func readDeferredValues(
    _ reader: inout ByteReader, _ deferred: DeferredValues, layout: [TensorSpec], total: Int,
    into values: inout [Double], _ field: String
  ) throws(DecodeError) {
    let rest = layout[deferred.position...]
    if values.count >= total {
      values.removeLast(values.count - total)
      try values.withUnsafeMutableBufferPointer { (all) throws(DecodeError) in
        let target = UnsafeMutableBufferPointer(rebasing: all[deferred.element...])
        try readTensorValues(&reader, layout: rest, into: target, field)
      }
      return
    }
    var failure: DecodeError?
    let old = values
    values = [Double](unsafeUninitializedCapacity: total) { target, initialized in
      do throws(DecodeError) {
        old.withUnsafeBufferPointer { old in
          _ = target.initialize(fromContentsOf: old[..<deferred.element])
        }
        let tail = UnsafeMutableBufferPointer(rebasing: target[deferred.element...])
        try readTensorValues(&reader, layout: rest, into: tail, field)
        initialized = total
      } catch {
        failure = error
      }
    }
    if let failure { throw failure }
  }

  /// Moves past a tensor's header already read and checked once: a length
  /// byte, the name, the type tag, the size. (Its values follow, in this frame
  /// or one of their own.)
  private static func skipHeader(of spec: TensorSpec, _ reader: inout ByteReader) {
    reader.skip(1 + spec.name.utf8.count + 1 + 1 + 8 * spec.rank)
  }

  /// The values of tensors whose `layout` was just read from the same bytes,
  /// each copied and checked into its part of `target`.
  private static func readTensorValues(
    _ reader: inout ByteReader, layout: ArraySlice<TensorSpec>,
    into target: UnsafeMutableBufferPointer<Double>,
    _ field: @autoclosure () -> String
  ) throws(DecodeError) {
    var filled = 0
    for spec in layout {
      skipHeader(of: spec, &reader)
      try reader.enterValues(
        byteCount: spec.count * spec.elementType.byteCount, "\(field()) \(spec.name) data")
      let part = UnsafeMutableBufferPointer(rebasing: target[filled..<(filled + spec.count)])
      switch spec.elementType {
      case .float64: try reader.readFiniteArray(into: part, "\(field()) \(spec.name)")
      case .float32: try reader.readFiniteFloat32Array(into: part, "\(field()) \(spec.name)")
      }
      try reader.leaveValues()
      filled += spec.count
    }
  }
}

// Field names are autoclosures: they are only built into strings for an error.
extension ByteReader {
  /// A model or tensor name: a `str8` of 1 to 64 bytes from `A-Z a-z 0-9 . _ -`.
  /// When the bytes spell `previous`, that string is returned (no allocation).
  mutating func readName(
    reusing previous: String? = nil,
    _ field: @autoclosure () -> String
  ) throws(DecodeError) -> String {
    let name = try readString(
      lengthAs: UInt8.self, maximum: TensorSpec.maximumNameLength, reusing: previous, field())
    guard TensorSpec.isValidName(name) else {
      throw .invalid(
        field: field(), reason: "\"\(name)\" is not 1-64 characters of A-Z a-z 0-9 . _ -")
    }
    return name
  }

  /// A shape: `u8 rank` (1 to 4), then rank × `u64` dimensions, each at least
  /// 1, whose product is at most 2^31 − 1 elements. Unused lanes are 1.
  mutating func readShape(_ field: @autoclosure () -> String) throws(DecodeError) -> (
    rank: Int, dimensions: SIMD4<Int>
  ) {
    let rank = Int(try read(UInt8.self, "\(field()) rank"))
    guard rank >= 1, rank <= TensorSpec.maximumRank else {
      throw .outOfRange(
        field: "\(field()) rank", value: String(rank), allowed: "1...\(TensorSpec.maximumRank)")
    }
    var dimensions = SIMD4<Int>(1, 1, 1, 1)
    var product: UInt64 = 1
    for axis in 0..<rank {
      let size = try read(UInt64.self, "\(field()) dimension \(axis)")
      let (next, overflow) = product.multipliedReportingOverflow(by: size)
      guard size >= 1, !overflow, next <= UInt64(Int32.max) else {
        throw .outOfRange(
          field: "\(field()) size",
          value: size == 0 ? "a dimension of 0" : "more than \(Int32.max)",
          allowed: "1...\(Int32.max) elements")
      }
      product = next
      dimensions[axis] = Int(size)
    }
    return (rank, dimensions)
  }

  /// A vector's length as `u64 elements` (1 to 2^31 − 1): the form before shapes.
  mutating func readVectorLength(_ field: @autoclosure () -> String) throws(DecodeError) -> Int {
    let elements = try read(UInt64.self, "\(field()) size")
    guard elements >= 1, elements <= UInt64(Int32.max) else {
      throw .outOfRange(
        field: "\(field()) size", value: String(elements), allowed: "1...\(Int32.max)")
    }
    return Int(elements)
  }

  /// A tensor count, `u16` 1 to 256.
  mutating func readLayoutCount(_ field: @autoclosure () -> String) throws(DecodeError) -> Int {
    let count = Int(try read(UInt16.self, "\(field()) tensor count"))
    guard count >= 1, count <= WireCodec.maximumTensors else {
      throw .outOfRange(
        field: "\(field()) tensor count", value: String(count),
        allowed: "1...\(WireCodec.maximumTensors)")
    }
    return count
  }
}

/// At most 256 tensors: comparing pairs needs no allocation, unlike a set.
private func checkUniqueNames(_ layout: [TensorSpec]) throws(DecodeError) {
  for index in layout.indices {
    for earlier in 0..<index where layout[earlier].name == layout[index].name {
      throw .invalid(field: "tensor name", reason: "\"\(layout[index].name)\" appears twice")
    }
  }
}
