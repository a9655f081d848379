/// Reads a message front to back, refusing to read past its end. A message is
/// one frame, or several when tensor values travel in frames of their own
/// (`docs/protocol.md`): every read stays within the current frame, and the
/// reader moves to the next one only where values may begin or end.
struct ByteReader {
  private var buffer: UnsafeRawBufferPointer
  private(set) var offset = 0
  /// The frames after the first, and how many of them have been entered. A
  /// pointer, not an array, so that a reader is plain data: the decoder copies
  /// it to read a message twice, without reference counting.
  private let laterFrames: UnsafeBufferPointer<UnsafeRawBufferPointer>
  private let firstFrame: UnsafeRawBufferPointer
  private var framesEntered = 0
  /// Whether the current frame holds only the values being read.
  private var inValuesFrame = false

  /// A reader of `buffer`, then of the frames `later` points to, which must
  /// outlive the reader.
  init(
    _ buffer: UnsafeRawBufferPointer,
    later: UnsafeBufferPointer<UnsafeRawBufferPointer> = UnsafeBufferPointer(start: nil, count: 0)
  ) {
    self.buffer = buffer
    firstFrame = buffer
    laterFrames = later
  }

  /// Bytes left in the current frame.
  var remaining: Int { buffer.count - offset }
  /// Frames not yet entered.
  private var framesLeft: Int { laterFrames.count - framesEntered }

  /// Refuses bytes or frames left over after a message.
  func expectEnd() throws(DecodeError) {
    guard remaining == 0 else { throw .trailingBytes(remaining) }
    guard framesLeft == 0 else {
      throw .invalid(field: "frames", reason: "\(framesLeft) more than the message holds")
    }
  }

  /// Where the reader is, to come back to with `seek(to:)` (two words: cheap
  /// to note on every tensor).
  struct Position {
    fileprivate var framesEntered: Int
    fileprivate var offset: Int
  }

  /// The current position (never inside a values frame: noted at a header).
  var position: Position { Position(framesEntered: framesEntered, offset: offset) }

  /// Goes back to `position`, noted earlier on this reader.
  mutating func seek(to position: Position) {
    framesEntered = position.framesEntered
    buffer = framesEntered == 0 ? firstFrame : laterFrames[framesEntered - 1]
    offset = position.offset
    inValuesFrame = false
  }

  private mutating func enterNextFrame() {
    buffer = laterFrames[framesEntered]
    framesEntered += 1
    offset = 0
  }

  /// Where `byteCount` bytes of a tensor's values begin: when the current frame
  /// is used up and another follows, the values must fill that frame exactly.
  /// Otherwise they follow in the current frame (the caller checks they fit).
  /// Returns whether the values are in a frame of their own. Always inlined:
  /// called for every tensor, and otherwise its message's captures (the field
  /// name) cost a retain and a release each time, error or not.
  @discardableResult @inline(__always)
  mutating func enterValues(byteCount: Int, _ field: @autoclosure () -> String)
    throws(DecodeError) -> Bool
  {
    guard remaining == 0, framesLeft > 0 else { return false }
    let frame = laterFrames[framesEntered]
    guard frame.count == byteCount else {
      throw .invalid(
        field: field(),
        reason: "a values frame of \(frame.count) bytes for \(byteCount) bytes of values")
    }
    enterNextFrame()
    inValuesFrame = true
    return true
  }

  /// Whether the next byte is aligned for a Float64 (a frame libzmq allocated
  /// starts at an address malloc aligns).
  var isAlignedForFloat64: Bool {
    guard let base = buffer.baseAddress else { return false }
    return Int(bitPattern: base + offset) % MemoryLayout<Double>.alignment == 0
  }

  /// Where a tensor's values end: after a frame of their own, the message goes on
  /// in the next frame, if one follows (it may not be empty).
  @inline(__always)
  mutating func leaveValues() throws(DecodeError) {
    guard inValuesFrame else { return }
    inValuesFrame = false
    guard framesLeft > 0 else { return }
    guard laterFrames[framesEntered].count > 0 else {
      throw .invalid(field: "frames", reason: "an empty frame after a values frame")
    }
    enterNextFrame()
  }

  mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: @autoclosure () -> String)
    throws(DecodeError) -> T
  {
    let size = MemoryLayout<T>.size
    guard remaining >= size else {
      throw .truncated(field: field(), needed: size, remaining: remaining)
    }
    let value = buffer.loadUnaligned(fromByteOffset: offset, as: T.self)
    offset += size
    return T(littleEndian: value)
  }

  /// Moves past `count` bytes the caller has checked are there.
  mutating func skip(_ count: Int) {
    precondition(count <= remaining, "skip past the end of a frame")
    offset += count
  }

  /// The next `count` bytes of the current frame, to read apart (a part with
  /// its length in front of it).
  mutating func readBytes(_ count: Int, _ field: @autoclosure () -> String)
    throws(DecodeError) -> UnsafeRawBufferPointer
  {
    guard count <= remaining else {
      throw .truncated(field: field(), needed: count, remaining: remaining)
    }
    defer { offset += count }
    return UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count)])
  }

  /// Refuses, before anything is read, `count` elements of `width` bytes that
  /// the frame does not hold (the division cannot overflow, unlike the product).
  func requireElements(_ count: Int, of width: Int, _ field: @autoclosure () -> String)
    throws(DecodeError)
  {
    guard count <= remaining / width else {
      throw .truncated(field: field(), needed: count &* width, remaining: remaining)
    }
  }

  /// A `u8` that must be 0 or 1.
  mutating func readFlag(_ field: @autoclosure () -> String) throws(DecodeError) -> Bool {
    let byte = try read(UInt8.self, field())
    guard byte <= 1 else {
      throw .outOfRange(field: field(), value: String(byte), allowed: "0 or 1")
    }
    return byte == 1
  }

  /// A finite Float64 that must not be negative.
  mutating func readNonNegative(_ field: @autoclosure () -> String) throws(DecodeError) -> Double {
    let value = try readFinite(field())
    guard value >= 0 else { throw .outOfRange(field: field(), value: "\(value)", allowed: ">= 0") }
    return value
  }

  /// A Float64, which must be finite.
  mutating func readFinite(_ field: @autoclosure () -> String) throws(DecodeError) -> Double {
    let value = Double(bitPattern: try read(UInt64.self, field()))
    guard value.isFinite else { throw .nonFinite(field: field()) }
    return value
  }

  /// `target.count` finite Float64 values into `target`, in one pass that
  /// copies and checks (it vectorizes). Bounds-checked before anything is written.
  mutating func readFiniteArray(
    into target: UnsafeMutableBufferPointer<Double>, _ field: @autoclosure () -> String
  ) throws(DecodeError) {
    let count = target.count
    try requireElements(count, of: 8, field())
    let source = UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count * 8)])
    var carries: UInt64 = 0
    for index in 0..<count {
      let bits = UInt64(
        littleEndian: source.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
      carries |= Self.nonFiniteCarry(bits)
      target[index] = Double(bitPattern: bits)
    }
    if carries >> 63 != 0 {
      let index = target.firstIndex(where: { !$0.isFinite })!
      throw .nonFinite(field: "\(field())[\(index)]")
    }
    offset += count * 8
  }

  /// NaN and infinity have every exponent bit set: adding the lowest exponent
  /// bit to the masked exponent carries into the sign bit for them alone. An OR
  /// of these over many values is branch-free and needs only 64-bit add, and,
  /// or, which every x86-64 and arm64 vector unit has (an unsigned min does not).
  @inline(__always)
  private static func nonFiniteCarry(_ bits: UInt64) -> UInt64 {
    (bits & 0x7FF0_0000_0000_0000) &+ 0x0010_0000_0000_0000
  }

  /// The same carry test on binary32's exponent: into bit 31.
  @inline(__always)
  private static func nonFiniteCarry(_ bits: UInt32) -> UInt32 {
    (bits & 0x7F80_0000) &+ 0x0080_0000
  }

  /// `count` finite Float64 values where they are, checked but not copied: for
  /// values aligned in the host's byte order (little-endian), valid as long as
  /// the frame is.
  mutating func readFiniteInPlace(count: Int, _ field: @autoclosure () -> String)
    throws(DecodeError) -> UnsafeBufferPointer<Double>
  {
    try requireElements(count, of: 8, field())
    precondition(isAlignedForFloat64, "values read in place must be aligned")
    let values = UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count * 8)])
      .bindMemory(to: Double.self)
    var carries: UInt64 = 0
    for value in values { carries |= Self.nonFiniteCarry(value.bitPattern) }
    if carries >> 63 != 0 {
      let index = values.firstIndex(where: { !$0.isFinite })!
      throw .nonFinite(field: "\(field())[\(index)]")
    }
    offset += count * 8
    return values
  }

  /// `target.count` Float32 values, which must be finite, widened into `target`
  /// in one pass that copies and checks, like `readFiniteArray`.
  mutating func readFiniteFloat32Array(
    into target: UnsafeMutableBufferPointer<Double>, _ field: @autoclosure () -> String
  ) throws(DecodeError) {
    let count = target.count
    try requireElements(count, of: 4, field())
    let source = UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + count * 4)])
    var carries: UInt32 = 0
    for index in 0..<count {
      let bits = UInt32(
        littleEndian: source.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
      carries |= Self.nonFiniteCarry(bits)
      target[index] = Double(Float(bitPattern: bits))
    }
    if carries >> 31 != 0 {
      let index = target.firstIndex(where: { !$0.isFinite })!
      throw .nonFinite(field: "\(field())[\(index)]")
    }
    offset += count * 4
  }

  /// A UTF-8 string preceded by its length of type `Length`, at most `maximum` bytes.
  /// When the bytes spell `reusing`, that string is returned instead of a new one
  /// (a long name then costs no allocation).
  mutating func readString<Length: FixedWidthInteger>(
    lengthAs: Length.Type, maximum: Int, reusing previous: String? = nil,
    _ field: @autoclosure () -> String
  ) throws(DecodeError) -> String {
    let length = Int(try read(Length.self, "\(field()) length"))
    guard length <= maximum else {
      throw .outOfRange(field: field(), value: String(length), allowed: "at most \(maximum) bytes")
    }
    guard remaining >= length else {
      throw .truncated(field: field(), needed: length, remaining: remaining)
    }
    let bytes = UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + length)])
    offset += length
    if var previous, previous.utf8.count == length,
      previous.withUTF8({ $0.elementsEqual(bytes) })
    {
      return previous
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw .invalid(field: field(), reason: "not valid UTF-8")
    }
    return text
  }
}
