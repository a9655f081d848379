/// Reads a frame front to back, refusing to read past its end.
struct ByteReader {
  private let buffer: UnsafeRawBufferPointer
  private(set) var offset = 0

  init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

  var remaining: Int { buffer.count - offset }

  mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(DecodeError) -> T {
    let size = MemoryLayout<T>.size
    guard remaining >= size else {
      throw .truncated(field: field, needed: size, remaining: remaining)
    }
    let value = buffer.loadUnaligned(fromByteOffset: offset, as: T.self)
    offset += size
    return T(littleEndian: value)
  }

  /// A Float64, which must be finite.
  mutating func readFinite(_ field: String) throws(DecodeError) -> Double {
    let value = Double(bitPattern: try read(UInt64.self, field))
    guard value.isFinite else { throw .nonFinite(field: field) }
    return value
  }

  /// `count` finite Float64 values, bounds-checked before allocating.
  mutating func readFiniteArray(count: Int, into values: inout [Double], _ field: String)
    throws(DecodeError)
  {
    guard count <= remaining / 8 else {
      throw .truncated(field: field, needed: count * 8, remaining: remaining)
    }
    let start = offset
    for index in 0..<count {
      let bits = UInt64(
        littleEndian: buffer.loadUnaligned(fromByteOffset: start + index * 8, as: UInt64.self))
      let value = Double(bitPattern: bits)
      guard value.isFinite else { throw .nonFinite(field: "\(field)[\(index)]") }
      values.append(value)
    }
    offset += count * 8
  }

  /// A UTF-8 string preceded by its length of type `Length`, at most `maximum` bytes.
  mutating func readString<Length: FixedWidthInteger>(
    lengthAs: Length.Type, maximum: Int, _ field: String
  ) throws(DecodeError) -> String {
    let length = Int(try read(Length.self, "\(field) length"))
    guard length <= maximum else {
      throw .outOfRange(field: field, value: String(length), allowed: "at most \(maximum) bytes")
    }
    guard remaining >= length else {
      throw .truncated(field: field, needed: length, remaining: remaining)
    }
    let bytes = UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + length)])
    offset += length
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw .invalid(field: field, reason: "not valid UTF-8")
    }
    return text
  }
}
