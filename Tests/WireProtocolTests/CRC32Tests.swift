import Testing

@testable import WireProtocol

/// The CRC-32 that guards checkpoints, read eight bytes at a time, is the
/// standard one byte for byte.
@Suite struct CRC32Tests {
  /// The plain bytewise CRC-32 (IEEE, reflected), the definition to agree with.
  static func reference(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
      crc ^= UInt32(byte)
      for _ in 0..<8 { crc = crc & 1 == 1 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
    }
    return crc ^ 0xFFFF_FFFF
  }

  @Test func theCheckValueAndEveryLengthAndAlignmentAgreeWithTheBytewiseDefinition() {
    #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    #expect(CRC32.checksum([UInt8]()) == 0)
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
    for start in 0..<9 {
      for end in stride(from: start, through: bytes.count, by: 7) {
        let part = bytes[start..<end]
        #expect(CRC32.checksum(part) == Self.reference(Array(part)), "\(start)..<\(end)")
        #expect(CRC32.checksum(part.lazy.map { $0 }) == Self.reference(Array(part)))
      }
    }
  }
}
