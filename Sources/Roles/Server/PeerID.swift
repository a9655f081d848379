import WireProtocol

/// A connected peer as a ROUTER socket names it: libzmq's routing id bytes.
/// Ids of up to 32 bytes (libzmq's own are 5, pstrain workers' 16) are kept
/// inline, so naming the sender of each message allocates nothing.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
  private var inline: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
  private var count: Int
  private var longer: [UInt8]?

  /// A peer with routing id `bytes`.
  public init(_ bytes: [UInt8]) {
    self = bytes.withUnsafeBytes { PeerID($0) }
  }

  /// A peer with a copy of the routing id in `bytes`.
  public init(_ bytes: UnsafeRawBufferPointer) {
    count = bytes.count
    guard bytes.count <= 32 else {
      longer = Array(bytes)
      return
    }
    withUnsafeMutableBytes(of: &inline) { storage in
      if let base = bytes.baseAddress, bytes.count > 0 {
        storage.baseAddress!.copyMemory(from: base, byteCount: bytes.count)
      }
    }
  }

  /// Reads the routing id in place.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    if let longer { return try longer.withUnsafeBytes(body) }
    return try Swift.withUnsafeBytes(of: inline) {
      try body(UnsafeRawBufferPointer(rebasing: $0.prefix(count)))
    }
  }

  /// The routing id.
  public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

  public static func == (left: PeerID, right: PeerID) -> Bool {
    left.count == right.count && left.longer == right.longer && left.inline == right.inline
  }

  public func hash(into hasher: inout Hasher) {
    withUnsafeBytes { hasher.combine(bytes: $0) }
  }

  public var description: String { bytes.map { String($0, radix: 16) }.joined() }
}

/// A message to send to one peer.
public struct Outgoing: Equatable, Sendable {
  /// The recipient.
  public var peer: PeerID
  /// The message.
  public var message: WireMessage

  /// A message for `peer`.
  public init(to peer: PeerID, _ message: WireMessage) {
    self.peer = peer
    self.message = message
  }
}
