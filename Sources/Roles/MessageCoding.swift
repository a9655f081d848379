import WireProtocol
import ZeroMQ

extension Message {
  /// A frame holding `message`, encoded straight into libzmq's buffer.
  convenience init(encoding message: WireMessage) {
    self.init(count: WireCodec.encodedSize(of: message)) { buffer in
      var writer = ByteWriter(buffer)
      WireCodec.encode(message, into: &writer)
    }
  }

  /// The frame decoded in place.
  func decoded() -> Result<WireMessage, DecodeError> {
    withUnsafeBytes { bytes in Result { () throws(DecodeError) in try WireCodec.decode(bytes) } }
  }
}
