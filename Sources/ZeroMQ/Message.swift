import CZeroMQ

/// One ZeroMQ message frame. It owns a `zmq_msg_t`, so received frames are read
/// in place and outgoing frames are written in place: no copy beyond libzmq's own.
public final class Message {
  let pointer: UnsafeMutablePointer<zmq_msg_t>

  /// An empty frame, ready to receive into.
  public init() {
    pointer = .allocate(capacity: 1)
    zmq_msg_init(pointer)
  }

  /// A frame of `count` bytes whose contents `fill` writes directly into
  /// libzmq's buffer (the zero-copy way to build an outgoing frame).
  public init(
    count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void
  ) rethrows {
    pointer = .allocate(capacity: 1)
    guard zmq_msg_init_size(pointer, count) == 0 else {
      // Only ENOMEM is possible here; there is no sane way to continue.
      fatalError("zmq_msg_init_size(\(count)): \(ZMQError.last("zmq_msg_init_size"))")
    }
    let buffer = UnsafeMutableRawBufferPointer(start: zmq_msg_data(pointer), count: count)
    do {
      try fill(buffer)
    } catch {
      zmq_msg_close(pointer)
      pointer.deallocate()
      throw error
    }
  }

  /// A frame holding a copy of `bytes` (one memcpy for contiguous storage).
  public convenience init(bytes: some Collection<UInt8>) {
    self.init(count: bytes.count) { buffer in
      let copied = bytes.withContiguousStorageIfAvailable { source in
        if let base = source.baseAddress, !source.isEmpty {
          buffer.baseAddress!.copyMemory(from: base, byteCount: source.count)
        }
      }
      if copied == nil { _ = buffer.initializeMemory(as: UInt8.self, from: bytes) }
    }
  }

  /// A frame holding the UTF-8 bytes of `string`.
  public convenience init(string: String) {
    self.init(bytes: Array(string.utf8))
  }

  deinit {
    zmq_msg_close(pointer)
    pointer.deallocate()
  }

  /// The frame's size in bytes.
  public var count: Int { zmq_msg_size(pointer) }

  /// Whether more frames of the same multipart message follow this one.
  public var hasMore: Bool { zmq_msg_more(pointer) != 0 }

  /// Reads the frame's bytes in place, without copying them.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    let count = zmq_msg_size(pointer)
    guard count > 0, let data = zmq_msg_data(pointer) else {
      return try body(UnsafeRawBufferPointer(start: nil, count: 0))
    }
    return try body(UnsafeRawBufferPointer(start: data, count: count))
  }

  /// A copy of the frame's bytes.
  public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}
