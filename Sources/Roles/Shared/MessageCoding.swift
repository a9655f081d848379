import WireProtocol
import ZeroMQ

extension Socket {
  /// Sends `message` encoded straight into libzmq's buffer: as one frame, or,
  /// when it carries Float64 tensors of `FrameSplitter.defaultThreshold` bytes
  /// or more, with their values in frames of their own that libzmq sends from
  /// the tensors' storage, without a copy (`docs/protocol.md`). Returns false
  /// when `.dontWait` would block; then nothing is sent.
  @discardableResult
  func sendFrame(encoding message: WireMessage, _ blocking: Blocking = .wait) throws(ZMQError)
    -> Bool
  {
    var counter = ByteCounter()
    WireCodec.encode(message, into: &counter)
    guard counter.valuesFrames > 0 else {
      return try sendFrame(count: counter.count, blocking) { buffer in
        var writer = ByteWriter(buffer)
        WireCodec.encode(message, into: &writer)
      }
    }
    var splitter = FrameSplitter()
    WireCodec.encode(message, into: &splitter)
    let frames = splitter.frames
    for (index, frame) in frames.enumerated() {
      let more = index < frames.count - 1
      // Once the first frame is queued, libzmq queues the rest of the message.
      let mode = index == 0 ? blocking : .wait
      let sent: Result<Bool, ZMQError>
      switch frame {
      case .bytes(let bytes):
        sent = bytes.withUnsafeBytes { bytes in
          Result { () throws(ZMQError) in try sendFrame(bytes: bytes, more: more, mode) }
        }
      case .values(let values):
        let owner = TensorValuesOwner(values)
        sent = values.withUnsafeBytes { bytes in
          Result { () throws(ZMQError) in
            try sendFrame(referencing: bytes, owner: owner, more: more, mode)
          }
        }
      }
      if try !sent.get() { return false }
    }
    return true
  }

  /// Receives one message and decodes it into `message` (`WireCodec.decode(_:later:reusing:)`),
  /// in libzmq's buffers. Nil when `.dontWait` finds none.
  func receiveMessage(_ blocking: Blocking = .wait, decodingInto message: inout WireMessage)
    throws(ZMQError) -> Result<Void, DecodeError>?
  {
    var decoded: Result<Void, DecodeError>?
    _ = try receiveMessage(blocking, maximumFrames: WireCodec.maximumFrames) { frames in
      decoded = Result { () throws(DecodeError) in
        try frames.checkCount()
        try WireCodec.decode(frames.first, later: frames.later, reusing: &message)
      }
    }
    return decoded
  }
}

extension ReceivedFrames {
  /// Refuses a message of more frames than the protocol allows (the extra ones
  /// were dropped on receipt).
  func checkCount() throws(DecodeError) {
    guard dropped == 0 else {
      throw .invalid(field: "frames", reason: "more than \(WireCodec.maximumFrames) in one message")
    }
  }
}

/// Keeps a tensor's storage alive, and unchanged (copy-on-write), while libzmq
/// sends its values from it.
private final class TensorValuesOwner: Sendable {
  let values: ArraySlice<Double>
  init(_ values: ArraySlice<Double>) { self.values = values }
}
