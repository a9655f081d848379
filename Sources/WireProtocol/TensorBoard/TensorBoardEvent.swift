/// One `tensorflow.Event` of an event file, encoded as protobuf by hand (only
/// the fields pstrain writes; numbers from `tensorflow/core/util/event.proto`
/// and `framework/summary.proto`): `wall_time` = 1 (double), `step` = 2
/// (int64), then one of `file_version` = 3 (string) or `summary` = 5 (a
/// `Summary`, whose `value` = 1 repeats `Summary.Value` with `tag` = 1 and
/// `simple_value` = 2, a float). TensorBoard shows each value as a scalar.
public struct TensorBoardEvent: Equatable, Sendable {
  /// The version string of the first record of every event file.
  public static let fileVersion = "brain.Event:2"

  /// What the event carries.
  public enum Content: Equatable, Sendable {
    /// The file's format version (the first event of a file).
    case fileVersion(String)
    /// Scalars: tags such as `loss/test` and their values.
    case scalars([Scalar])
  }

  /// One tagged scalar of a summary.
  public struct Scalar: Equatable, Sendable {
    /// The name TensorBoard groups and plots it by (slashes make groups).
    public var tag: String
    /// The value (stored as a float, as `simple_value` is).
    public var value: Float

    /// `value` under `tag`.
    public init(tag: String, value: Float) {
      self.tag = tag
      self.value = value
    }
  }

  /// Seconds since 1970 when the event was written.
  public var wallTime: Double
  /// The x-axis position: pstrain uses the server's parameter version.
  public var step: Int64
  /// The payload.
  public var content: Content

  /// An event at `step`, written at `wallTime`.
  public init(wallTime: Double, step: Int64, content: Content) {
    self.wallTime = wallTime
    self.step = step
    self.content = content
  }

  /// The event's protobuf bytes (fields in number order, as protobuf writers emit them).
  public var encoded: [UInt8] {
    var message = ProtobufWriter()
    // proto3 leaves fields at their default out, as protobuf's own writers do.
    if wallTime.bitPattern != 0 { message.fixed64(field: 1, wallTime.bitPattern) }
    if step != 0 { message.varint(field: 2, UInt64(bitPattern: step)) }
    switch content {
    case .fileVersion(let version):
      message.lengthDelimited(field: 3, Array(version.utf8))
    case .scalars(let scalars):
      var summary = ProtobufWriter()
      for scalar in scalars {
        var value = ProtobufWriter()
        value.lengthDelimited(field: 1, Array(scalar.tag.utf8))
        value.fixed32(field: 2, scalar.value.bitPattern)
        summary.lengthDelimited(field: 1, value.bytes)
      }
      message.lengthDelimited(field: 5, summary.bytes)
    }
    return message.bytes
  }

  /// The event framed as one TFRecord, ready to append to an event file.
  public var record: [UInt8] { TFRecord.framed(encoded) }
}

/// The few protobuf wire types an event needs: varints (wire type 0), 64-bit
/// (1), length-delimited (2) and 32-bit (5), each after its field's key.
struct ProtobufWriter {
  private(set) var bytes: [UInt8] = []

  mutating func varint(field: UInt32, _ value: UInt64) {
    key(field, wireType: 0)
    rawVarint(value)
  }

  mutating func fixed64(field: UInt32, _ value: UInt64) {
    key(field, wireType: 1)
    for shift in stride(from: 0, to: 64, by: 8) {
      bytes.append(UInt8(truncatingIfNeeded: value >> shift))
    }
  }

  mutating func lengthDelimited(field: UInt32, _ payload: [UInt8]) {
    key(field, wireType: 2)
    rawVarint(UInt64(payload.count))
    bytes += payload
  }

  mutating func fixed32(field: UInt32, _ value: UInt32) {
    key(field, wireType: 5)
    for shift in stride(from: 0, to: 32, by: 8) {
      bytes.append(UInt8(truncatingIfNeeded: value >> shift))
    }
  }

  private mutating func key(_ field: UInt32, wireType: UInt64) {
    rawVarint(UInt64(field) << 3 | wireType)
  }

  private mutating func rawVarint(_ value: UInt64) {
    var rest = value
    while rest >= 0x80 {
      bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
      rest >>= 7
    }
    bytes.append(UInt8(rest))
  }
}
