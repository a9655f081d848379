import TrainingMath

/// Where an encoder writes: a counter (to size a frame) or a writer (to fill it).
/// Encoding twice through one generic path keeps size and bytes in agreement.
public protocol ByteSink {
  /// Appends raw bytes.
  mutating func write(bytes: UnsafeRawBufferPointer)
  /// Appends a fixed-width integer, little-endian.
  mutating func write<T: FixedWidthInteger>(_ value: T)
  /// Appends the values of one Float64 tensor, little-endian. A sink that
  /// splits messages into frames gives large ones a frame of their own.
  mutating func write(float64Values values: ArraySlice<Double>)
}

extension ByteSink {
  public mutating func write(float64Values values: ArraySlice<Double>) {
    values.withUnsafeBytes { bytes in
      #if _endian(little)
        write(bytes: bytes)
      #else
        for value in values { write(value) }
      #endif
    }
  }

  /// Appends a Float64 as its IEEE 754 bits, little-endian.
  mutating func write(_ value: Double) { write(value.bitPattern) }

  /// Appends a tensor's shape: `u8 rank`, then rank × `u64` dimensions.
  mutating func writeShape(of spec: TensorSpec) {
    write(UInt8(spec.rank))
    for axis in 0..<spec.rank { write(UInt64(spec.dimensions[axis])) }
  }

  /// Appends a string as a length of type `Length` and its UTF-8 bytes.
  mutating func write<Length: FixedWidthInteger>(_ string: String, lengthAs: Length.Type) {
    var text = string
    text.withUTF8 { utf8 in
      write(Length(utf8.count))
      write(bytes: UnsafeRawBufferPointer(utf8))
    }
  }
}

/// Counts the bytes an encoding needs, and the tensors whose values would
/// travel in frames of their own.
public struct ByteCounter: ByteSink {
  /// Bytes written so far.
  public private(set) var count = 0
  /// Tensors so far whose values `FrameSplitter` sends as frames of their own.
  public private(set) var valuesFrames = 0

  /// A counter at zero.
  public init() {}

  public mutating func write(bytes: UnsafeRawBufferPointer) { count += bytes.count }
  public mutating func write<T: FixedWidthInteger>(_ value: T) { count += MemoryLayout<T>.size }
  public mutating func write(float64Values values: ArraySlice<Double>) {
    count += values.count * 8
    if FrameSplitter.travelsInOwnFrame(values) { valuesFrames += 1 }
  }
}

/// Splits an encoding into frames: the values of each Float64 tensor of at
/// least `threshold` bytes become a frame of their own, which a socket can hand
/// to libzmq without copying it (`zmq_msg_init_data`); every other byte goes to
/// `bytes`, cut where those frames go. The frames' concatenation is the
/// one-frame encoding, byte for byte (`docs/protocol.md`).
public struct FrameSplitter: ByteSink {
  /// Values of this many bytes or more travel in a frame of their own: below
  /// it, copying costs less than a frame and a reference held until it is sent.
  public static let defaultThreshold = 64 << 10

  /// Whether `values` go in a frame of their own. Only where the host's byte
  /// order is the wire's: elsewhere the values must be converted, so copied.
  public static func travelsInOwnFrame(
    _ values: ArraySlice<Double>, threshold: Int = defaultThreshold
  ) -> Bool {
    #if _endian(little)
      values.count * 8 >= threshold
    #else
      false
    #endif
  }

  /// Every byte not in a values frame, in order.
  public private(set) var bytes: [UInt8] = []
  /// The values frames, each with the offset in `bytes` it goes before.
  public private(set) var cuts: [(offset: Int, values: ArraySlice<Double>)] = []
  private let threshold: Int

  /// A splitter that gives values of `threshold` bytes or more their own frame.
  public init(threshold: Int = defaultThreshold) { self.threshold = threshold }

  public mutating func write(bytes more: UnsafeRawBufferPointer) { bytes.append(contentsOf: more) }
  public mutating func write<T: FixedWidthInteger>(_ value: T) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
  }
  public mutating func write(float64Values values: ArraySlice<Double>) {
    if Self.travelsInOwnFrame(values, threshold: threshold) {
      cuts.append((bytes.count, values))
    } else {
      values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
  }

  /// The frames in order: byte runs (never empty) and values frames.
  public var frames: [SplitFrame] {
    var frames: [SplitFrame] = []
    var start = 0
    for cut in cuts {
      if cut.offset > start { frames.append(.bytes(bytes[start..<cut.offset])) }
      frames.append(.values(cut.values))
      start = cut.offset
    }
    if bytes.count > start { frames.append(.bytes(bytes[start...])) }
    return frames
  }
}

/// One frame of a split message.
public enum SplitFrame {
  /// Encoded bytes, copied into the frame.
  case bytes(ArraySlice<UInt8>)
  /// A tensor's Float64 values, whose bytes on this host are their encoding.
  case values(ArraySlice<Double>)
}

/// Writes an encoding into a buffer sized by `ByteCounter`.
public struct ByteWriter: ByteSink {
  private let buffer: UnsafeMutableRawBufferPointer
  /// Bytes written so far.
  public private(set) var offset = 0

  /// A writer at the start of `buffer`.
  public init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

  public mutating func write(bytes: UnsafeRawBufferPointer) {
    precondition(offset + bytes.count <= buffer.count, "frame buffer too small")
    if let base = bytes.baseAddress, bytes.count > 0 {
      (buffer.baseAddress! + offset).copyMemory(from: base, byteCount: bytes.count)
    }
    offset += bytes.count
  }

  public mutating func write<T: FixedWidthInteger>(_ value: T) {
    precondition(offset + MemoryLayout<T>.size <= buffer.count, "frame buffer too small")
    buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    offset += MemoryLayout<T>.size
  }
}

extension ByteCounter {
  /// The bytes `encode` writes. A record size a decoder bounds a count with
  /// comes from here, so it is what the encoder writes and cannot drift from it.
  static func size(of encode: (inout ByteCounter) -> Void) -> Int {
    var counter = ByteCounter()
    encode(&counter)
    return counter.count
  }
}
