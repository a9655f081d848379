import CZeroMQ

/// A libzmq context: owns the I/O threads shared by every socket made from it.
/// libzmq contexts are thread-safe, so a context may be shared between threads.
public final class Context: @unchecked Sendable {
  let handle: UnsafeMutableRawPointer

  /// Creates a context with `ioThreads` background I/O threads.
  public init(ioThreads: Int32 = 1) throws(ZMQError) {
    guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
    self.handle = handle
    if zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) != 0 {
      let error = ZMQError.last("zmq_ctx_set(ZMQ_IO_THREADS)")
      zmq_ctx_term(handle)
      throw error
    }
  }

  deinit {
    // Sockets keep their context alive, so by now every socket is closed and
    // zmq_ctx_term cannot block on one of ours.
    while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
  }

  /// The libzmq version this process linked against, e.g. (4, 3, 4).
  public static var libraryVersion: (major: Int32, minor: Int32, patch: Int32) {
    var major: Int32 = 0
    var minor: Int32 = 0
    var patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return (major, minor, patch)
  }
}
