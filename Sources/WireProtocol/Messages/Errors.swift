// Errors: `error`, a refusal with its code and a readable message.

/// Why the server refused a request.
public enum ErrorCode: UInt16, Sendable, CaseIterable, CustomStringConvertible {
  case malformed = 1
  case unsupportedVersion = 2
  case unknownType = 3
  case notJoined = 4
  case duplicateWorker = 5
  case layoutMismatch = 6
  case shardMismatch = 7
  case versionMismatch = 8
  case replayed = 9
  case unexpectedMessage = 10
  case nonFinite = 11
  case leaseLost = 12
  case datasetMismatch = 13
  /// The worker failed a confirmed audit: the server takes nothing more from it.
  case quarantined = 14
  /// A sparse message referred to a key list the server does not hold for the
  /// worker (never cached, evicted, or cached with another count): resend the keys.
  case unknownKeyList = 15
  /// A sparse message named a key outside the model's key space (0...2^B).
  case keyOutOfRange = 16

  public var description: String {
    switch self {
    case .malformed: "malformed"
    case .unsupportedVersion: "unsupported-version"
    case .unknownType: "unknown-type"
    case .notJoined: "not-joined"
    case .duplicateWorker: "duplicate-worker"
    case .layoutMismatch: "layout-mismatch"
    case .shardMismatch: "shard-mismatch"
    case .versionMismatch: "version-mismatch"
    case .replayed: "replayed"
    case .unexpectedMessage: "unexpected-message"
    case .nonFinite: "non-finite"
    case .leaseLost: "lease-lost"
    case .datasetMismatch: "dataset-mismatch"
    case .quarantined: "quarantined"
    case .unknownKeyList: "unknown-key-list"
    case .keyOutOfRange: "key-out-of-range"
    }
  }
}

/// A refusal: what was wrong, for the peer's error message.
public struct ErrorReply: Equatable, Sendable, CustomStringConvertible {
  /// Longest message kept, in bytes.
  public static let maximumMessageLength = 1024

  /// The reason class.
  public var code: ErrorCode
  /// A readable explanation.
  public var message: String

  /// An error reply; the message is cut to 1024 bytes.
  public init(code: ErrorCode, message: String) {
    self.code = code
    var text = message
    while text.utf8.count > Self.maximumMessageLength { text.removeLast() }
    self.message = text
  }

  public var description: String { "\(code): \(message)" }
}

extension ErrorReply {
  /// `u16 code`, `str16` message (at most 1024 bytes).
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(code.rawValue)
    sink.write(message, lengthAs: UInt16.self)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> ErrorReply {
    let raw = try reader.read(UInt16.self, "error code")
    guard let code = ErrorCode(rawValue: raw) else {
      throw .outOfRange(field: "error code", value: String(raw), allowed: "a known code")
    }
    let message = try reader.readString(
      lengthAs: UInt16.self, maximum: ErrorReply.maximumMessageLength, "error message")
    return ErrorReply(code: code, message: message)
  }
}
