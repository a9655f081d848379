/// TFRecord framing, the container of TensorBoard's event files: each record is
/// its length as a little-endian `u64`, the masked CRC-32C of those 8 bytes as a
/// `u32`, the data, and the masked CRC-32C of the data (TensorFlow's
/// `record_writer.cc`). `records(in:)` reads them back and refuses any damage.
public enum TFRecord {
  /// Bytes a record adds around its data.
  public static let overhead = 8 + 4 + 4

  /// Appends `data` framed as one record to `bytes`.
  public static func append(_ data: [UInt8], to bytes: inout [UInt8]) {
    let length = littleEndian(UInt64(data.count))
    bytes += length
    bytes += littleEndian(CRC32C.maskedChecksum(length))
    bytes += data
    bytes += littleEndian(CRC32C.maskedChecksum(data))
  }

  /// `data` framed as one record.
  public static func framed(_ data: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(data.count + overhead)
    append(data, to: &bytes)
    return bytes
  }

  /// The data of every record in `bytes`, in order. Throws `DecodeError` for a
  /// record cut short, a length whose CRC does not match, or data whose CRC does
  /// not match (naming the record by its index).
  public static func records(in bytes: [UInt8]) throws(DecodeError) -> [[UInt8]] {
    var records: [[UInt8]] = []
    var offset = 0
    while offset < bytes.count {
      let field = "record \(records.count)"
      guard bytes.count - offset >= 12 else {
        throw .truncated(field: field + " header", needed: 12, remaining: bytes.count - offset)
      }
      let lengthBytes = bytes[offset..<offset + 8]
      guard readUInt32(bytes, at: offset + 8) == CRC32C.maskedChecksum(lengthBytes) else {
        throw .invalid(field: field + " length", reason: "its CRC-32C does not match")
      }
      let length = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
      let start = offset + 12
      let remaining = bytes.count - start
      guard length <= UInt64(max(0, remaining - 4)) else {
        throw .truncated(
          field: field + " data", needed: Int(clamping: length) &+ 4, remaining: remaining)
      }
      let data = Array(bytes[start..<start + Int(length)])
      guard readUInt32(bytes, at: start + Int(length)) == CRC32C.maskedChecksum(data) else {
        throw .invalid(field: field + " data", reason: "its CRC-32C does not match")
      }
      records.append(data)
      offset = start + Int(length) + 4
    }
    return records
  }

  private static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
  }

  private static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
  }
}
