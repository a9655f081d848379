import Testing

@testable import WireProtocol

/// TensorBoard event files' bytes: the CRC-32C, the protobuf `Event` and the
/// TFRecord framing, checked against bytes TensorBoard's own Python package
/// wrote (tensorboard 2.x: `event_pb2.Event.SerializeToString()` and
/// `summary.writer.record_writer.RecordWriter`, run once; pasted below).
@Suite struct TensorBoardEventTests {
  /// `Event(wall_time=1.5, step=42, summary=Summary(value=[Value(tag="loss/test",
  /// simple_value=0.25), Value(tag="audit/passed", simple_value=1.0)]))`, serialized.
  static let scalarsEvent: [UInt8] = [
    9, 0, 0, 0, 0, 0, 0, 248, 63, 16, 42, 42, 39, 10, 16, 10, 9, 108, 111, 115, 115, 47, 116, 101,
    115, 116, 21, 0, 0, 128, 62, 10, 19, 10, 12, 97, 117, 100, 105, 116, 47, 112, 97, 115, 115,
    101, 100, 21, 0, 0, 128, 63,
  ]
  /// `Event(wall_time=1.5, file_version="brain.Event:2")`, serialized.
  static let versionEvent: [UInt8] = [
    9, 0, 0, 0, 0, 0, 0, 248, 63, 26, 13, 98, 114, 97, 105, 110, 46, 69, 118, 101, 110, 116, 58,
    50,
  ]
  /// `scalarsEvent` as `RecordWriter.write` framed it.
  static let scalarsRecord: [UInt8] =
    [52, 0, 0, 0, 0, 0, 0, 0, 94, 51, 23, 92] + scalarsEvent + [253, 116, 224, 190]

  static let scalars = TensorBoardEvent(
    wallTime: 1.5, step: 42,
    content: .scalars([
      .init(tag: "loss/test", value: 0.25), .init(tag: "audit/passed", value: 1),
    ]))

  @Test func crc32cMatchesTheCastagnoliCheckValue() {
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([UInt8]()) == 0)
    // TensorFlow's masked form, as tensorboard's masked_crc32c computes it.
    #expect(CRC32C.maskedChecksum(Array("123456789".utf8)) == 0xC78A_B0E5)
    // 32 bytes of zeros: the iSCSI test vector (RFC 3720, B.4).
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
  }

  @Test func anEventOfScalarsIsTheBytesProtobufWrites() {
    #expect(Self.scalars.encoded == Self.scalarsEvent)
  }

  @Test func theFileVersionEventIsTheBytesProtobufWrites() {
    let event = TensorBoardEvent(
      wallTime: 1.5, step: 0, content: .fileVersion(TensorBoardEvent.fileVersion))
    #expect(event.encoded == Self.versionEvent)
  }

  @Test func aRecordIsFramedAsTensorFlowsRecordWriterFramesIt() {
    #expect(Self.scalars.record == Self.scalarsRecord)
  }

  @Test func recordsAreReadBack() throws {
    var file: [UInt8] = []
    TFRecord.append(Self.versionEvent, to: &file)
    TFRecord.append(Self.scalarsEvent, to: &file)
    TFRecord.append([], to: &file)
    #expect(try TFRecord.records(in: file) == [Self.versionEvent, Self.scalarsEvent, []])
  }

  /// A flipped bit anywhere in a record, its length, its checksums or its data,
  /// is refused, as TensorBoard's reader refuses it.
  @Test func aFlippedBitAnywhereIsRefused() {
    for index in Self.scalarsRecord.indices {
      var damaged = Self.scalarsRecord
      damaged[index] ^= 0x10
      #expect(throws: DecodeError.self) { try TFRecord.records(in: damaged) }
    }
  }

  @Test func aRecordCutShortIsRefused() {
    for count in [1, 11, 12, 20, Self.scalarsRecord.count - 1] {
      #expect(throws: DecodeError.self) {
        try TFRecord.records(in: Array(Self.scalarsRecord.prefix(count)))
      }
    }
  }

  /// Negative steps and long tags: varints of ten bytes and of two (the bytes
  /// as protobuf writes `Event(step=-1, summary=…tag="a"*200, simple_value=0)`).
  @Test func varintsOfEverySizeAreEncoded() {
    let event = TensorBoardEvent(
      wallTime: 0, step: -1,
      content: .scalars([.init(tag: String(repeating: "a", count: 200), value: 0)]))
    let bytes = event.encoded
    // step: key 16, then -1 as ten bytes (0xFF × 9, 0x01).
    #expect(Array(bytes.prefix(11)) == [16] + [UInt8](repeating: 0xFF, count: 9) + [1])
    // summary: key 42, length 211 = 0xD3 0x01; its value: key 10, length 208 = 0xD0 0x01.
    #expect(Array(bytes[11..<17]) == [42, 0xD3, 0x01, 10, 0xD0, 0x01])
    // A zero simple_value is still written (it is a member of a oneof).
    #expect(Array(bytes.suffix(5)) == [21, 0, 0, 0, 0])
    #expect(bytes.count == 225)
  }
}
