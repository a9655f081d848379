import WireProtocol
import ZeroMQ

extension Socket {
  /// Sends `message` as one frame, encoded straight into libzmq's buffer.
  /// Returns false when `.dontWait` would block.
  @discardableResult
  func sendFrame(encoding message: WireMessage, _ blocking: Blocking = .wait) throws(ZMQError)
    -> Bool
  {
    try sendFrame(count: WireCodec.encodedSize(of: message), blocking) { buffer in
      var writer = ByteWriter(buffer)
      WireCodec.encode(message, into: &writer)
    }
  }
}
