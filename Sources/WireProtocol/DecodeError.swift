/// Why a frame could not be decoded. Each case names the field, so the error
/// reply tells the sender exactly what was wrong.
public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
  case truncated(field: String, needed: Int, remaining: Int)
  case badMagic
  case unsupportedVersion(UInt8)
  case unknownType(UInt8)
  case nonFinite(field: String)
  case outOfRange(field: String, value: String, allowed: String)
  case invalid(field: String, reason: String)
  case trailingBytes(Int)

  public var description: String {
    switch self {
    case .truncated(let field, let needed, let remaining):
      "truncated frame: \(field) needs \(needed) bytes, \(remaining) left"
    case .badMagic: "not a pstrain frame (bad magic bytes)"
    case .unsupportedVersion(let version):
      "unsupported protocol version \(version) (this build speaks \(WireCodec.protocolVersion))"
    case .unknownType(let type): "unknown message type \(type)"
    case .nonFinite(let field): "\(field) is NaN or infinite"
    case .outOfRange(let field, let value, let allowed):
      "\(field) = \(value) is out of range (\(allowed))"
    case .invalid(let field, let reason): "\(field) is invalid: \(reason)"
    case .trailingBytes(let count): "\(count) unexpected bytes after the message"
    }
  }

  /// The error code a server answers this with.
  public var code: ErrorCode {
    switch self {
    case .unsupportedVersion: .unsupportedVersion
    case .unknownType: .unknownType
    case .nonFinite: .nonFinite
    default: .malformed
    }
  }
}
