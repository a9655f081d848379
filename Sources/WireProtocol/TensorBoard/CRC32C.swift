/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TFRecord
/// files use, with the mask TensorFlow applies to the checksums it stores (so a
/// CRC of bytes that themselves hold CRCs does not degenerate). Table-driven,
/// one byte at a time: event records are small.
public enum CRC32C {
  /// The 256-entry table: each byte's contribution to the register.
  private static let table: [UInt32] = (0..<256).map { index in
    var value = UInt32(index)
    for _ in 0..<8 { value = value & 1 == 1 ? 0x82F6_3B78 ^ (value >> 1) : value >> 1 }
    return value
  }

  /// The CRC-32C of `bytes` ("123456789" gives 0xE3069283).
  public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
    table.withUnsafeBufferPointer { table in
      var crc: UInt32 = 0xFFFF_FFFF
      for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
      return ~crc
    }
  }

  /// TensorFlow's masked form of `crc`: rotated right by 15 bits plus 0xa282ead8.
  public static func mask(_ crc: UInt32) -> UInt32 {
    ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
  }

  /// The masked CRC-32C of `bytes`, as a TFRecord stores it.
  public static func maskedChecksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
    mask(checksum(bytes))
  }
}
