import CZeroMQ

/// Waits on several sockets at once for input (zmq_poll).
public struct Poller {
  private var items: [zmq_pollitem_t] = []
  // The sockets are held so that their handles stay valid while polled.
  private var sockets: [Socket] = []

  /// An empty poller.
  public init() {}

  /// Adds `socket` to the set polled for input.
  public mutating func add(_ socket: Socket) {
    items.append(
      zmq_pollitem_t(socket: socket.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
    sockets.append(socket)
  }

  /// Waits up to `timeoutMilliseconds` (-1 forever) and returns, per socket in the
  /// order added, whether it has input. A signal ends the wait early with all false,
  /// so callers can check for shutdown.
  public mutating func poll(timeoutMilliseconds: Int) throws(ZMQError) -> [Bool] {
    let count = items.count
    let ready = items.withUnsafeMutableBufferPointer {
      zmq_poll($0.baseAddress, Int32(count), timeoutMilliseconds)
    }
    if ready < 0 {
      let error = ZMQError.last("zmq_poll")
      if error.isInterrupted { return Array(repeating: false, count: count) }
      throw error
    }
    return items.map { ($0.revents & Int16(ZMQ_POLLIN)) != 0 }
  }
}
