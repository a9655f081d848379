import WireProtocol

/// A connected peer as a ROUTER socket names it: libzmq's routing id bytes.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
  /// The routing id.
  public let bytes: [UInt8]

  /// A peer with routing id `bytes`.
  public init(_ bytes: [UInt8]) { self.bytes = bytes }

  /// A peer with a copy of the routing id in `bytes`.
  public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = Array(bytes) }

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
