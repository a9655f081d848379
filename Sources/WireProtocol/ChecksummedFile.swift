/// The framing pstrain's files share (checkpoints, saved models): four magic
/// bytes, a `u16` format version, the body little-endian, and a CRC-32 of all
/// the bytes before it. One place checks the frame, so every file kind refuses
/// the same damage in the same way.
enum ChecksummedFile {
  /// The file bytes of `body`: sized by a `ByteCounter` first, written once
  /// with the wire's `ByteSink`, then the CRC of everything before it.
  static func encode(magic: [UInt8], format: UInt16, _ body: some FileBody) -> [UInt8] {
    var counter = ByteCounter()
    body.encodeBody(into: &counter)
    let size = magic.count + MemoryLayout<UInt16>.size + counter.count + MemoryLayout<UInt32>.size
    return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
      var writer = ByteWriter(UnsafeMutableRawBufferPointer(buffer))
      magic.withUnsafeBytes { writer.write(bytes: $0) }
      writer.write(format)
      body.encodeBody(into: &writer)
      writer.write(CRC32.checksum(UnsafeBufferPointer(rebasing: buffer[..<writer.offset])))
      initialized = writer.offset
    }
  }

  /// Checks `bytes`' magic, format (one of `formats`) and CRC, then reads the
  /// body with `read`, given a reader over it and the format version. Throws
  /// the file kind's `Failure`: what `read` throws of it, or any other error
  /// it throws (a `DecodeError`) as `malformed`.
  static func decode<Value, Failure: ChecksummedFileFailure>(
    _ bytes: [UInt8], magic: [UInt8], formats: ClosedRange<UInt16>, failure: Failure.Type,
    read: (inout ByteReader, UInt16) throws -> Value
  ) throws(Failure) -> Value {
    let header = magic.count + MemoryLayout<UInt16>.size
    guard bytes.count >= header + 4, bytes.starts(with: magic) else { throw .wrongMagic }
    let stored = bytes.suffix(4).enumerated().reduce(UInt32(0)) {
      $0 | UInt32($1.element) << (8 * $1.offset)
    }
    let computed = CRC32.checksum(bytes.dropLast(4))
    let format = UInt16(bytes[magic.count]) | UInt16(bytes[magic.count + 1]) << 8
    guard formats.contains(format) else { throw .unsupportedFormat(format) }
    guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }
    do {
      return try bytes.withUnsafeBytes { buffer in
        var reader = ByteReader(
          UnsafeRawBufferPointer(rebasing: buffer[header..<(buffer.count - 4)]))
        return try read(&reader, format)
      }
    } catch let failure as Failure {
      throw failure
    } catch {
      throw .malformed("\(error)")
    }
  }
}

/// The errors a kind of `ChecksummedFile` is refused with, each worded for
/// that kind by its codec (enum cases can be the witnesses).
protocol ChecksummedFileFailure: Error {
  /// Too short, or other magic bytes.
  static var wrongMagic: Self { get }
  /// A format version this build does not read.
  static func unsupportedFormat(_ format: UInt16) -> Self
  /// The CRC-32 at the end does not match the bytes before it.
  static func checksumMismatch(stored: UInt32, computed: UInt32) -> Self
  /// The body does not decode, or does not make sense.
  static func malformed(_ reason: String) -> Self
}

/// What a `ChecksummedFile` holds between its format version and its CRC.
protocol FileBody {
  /// Writes the body's fields into `sink`.
  func encodeBody<Sink: ByteSink>(into sink: inout Sink)
}
