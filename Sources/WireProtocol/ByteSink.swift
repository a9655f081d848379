/// Where an encoder writes: a counter (to size a frame) or a writer (to fill it).
/// Encoding twice through one generic path keeps size and bytes in agreement.
public protocol ByteSink {
  /// Appends raw bytes.
  mutating func write(bytes: UnsafeRawBufferPointer)
  /// Appends a fixed-width integer, little-endian.
  mutating func write<T: FixedWidthInteger>(_ value: T)
}

extension ByteSink {
  /// Appends a Float64 as its IEEE 754 bits, little-endian.
  mutating func write(_ value: Double) { write(value.bitPattern) }

  /// Appends a string as a length of type `Length` and its UTF-8 bytes.
  mutating func write<Length: FixedWidthInteger>(_ string: String, lengthAs: Length.Type) {
    var text = string
    text.withUTF8 { utf8 in
      write(Length(utf8.count))
      write(bytes: UnsafeRawBufferPointer(utf8))
    }
  }
}

/// Counts the bytes an encoding needs.
public struct ByteCounter: ByteSink {
  /// Bytes written so far.
  public private(set) var count = 0

  /// A counter at zero.
  public init() {}

  public mutating func write(bytes: UnsafeRawBufferPointer) { count += bytes.count }
  public mutating func write<T: FixedWidthInteger>(_ value: T) { count += MemoryLayout<T>.size }
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
