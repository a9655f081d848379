import CZeroMQ

/// A ZeroMQ socket. A socket belongs to one thread: it is deliberately not
/// `Sendable`, so the compiler keeps it on the thread that made it.
public final class Socket {
  /// The socket patterns pstrain uses.
  public enum Kind: Sendable {
    case router, dealer, request, reply, pair, push, pull
    /// Raw TCP: frames are [peer id, bytes]; an empty frame opens or closes a connection.
    case stream

    var rawValue: Int32 {
      switch self {
      case .router: ZMQ_ROUTER
      case .dealer: ZMQ_DEALER
      case .request: ZMQ_REQ
      case .reply: ZMQ_REP
      case .pair: ZMQ_PAIR
      case .push: ZMQ_PUSH
      case .pull: ZMQ_PULL
      case .stream: ZMQ_STREAM
      }
    }
  }

  /// Whether a send or receive may wait.
  public enum Blocking: Sendable {
    case wait, dontWait
  }

  let handle: UnsafeMutableRawPointer
  /// Keeps the context alive for as long as the socket is open.
  private let context: Context
  private var isClosed = false

  /// Opens a socket of `kind` in `context`.
  public init(_ context: Context, kind: Kind) throws(ZMQError) {
    guard let handle = zmq_socket(context.handle, kind.rawValue) else {
      throw ZMQError.last("zmq_socket")
    }
    self.handle = handle
    self.context = context
  }

  deinit { close() }

  /// Closes the socket. Queued messages are still delivered for up to the
  /// socket's linger period, so set `.linger` first if that matters.
  public func close() {
    guard !isClosed else { return }
    isClosed = true
    zmq_close(handle)
  }

  /// Sets one option.
  public func set(_ option: SocketOption) throws(ZMQError) {
    let (number, value) = option.encoded
    let status = value.withUnsafeBytes { zmq_setsockopt(handle, number, $0.baseAddress, $0.count) }
    if status != 0 { throw ZMQError.last("zmq_setsockopt(\(option.name))") }
  }

  /// Sets several options in order.
  public func set(_ options: [SocketOption]) throws(ZMQError) {
    for option in options { try set(option) }
  }

  /// Binds to `endpoint`, e.g. `tcp://127.0.0.1:*`.
  public func bind(_ endpoint: String) throws(ZMQError) {
    if zmq_bind(handle, endpoint) != 0 { throw ZMQError.last("zmq_bind(\(endpoint))") }
  }

  /// Connects to `endpoint`; the connection itself completes in the background.
  public func connect(_ endpoint: String) throws(ZMQError) {
    if zmq_connect(handle, endpoint) != 0 { throw ZMQError.last("zmq_connect(\(endpoint))") }
  }

  /// The endpoint last bound, with a wildcard port resolved (ZMQ_LAST_ENDPOINT).
  public func lastEndpoint() throws(ZMQError) -> String {
    var buffer = [CChar](repeating: 0, count: 1024)
    var size = buffer.count
    if zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) != 0 {
      throw ZMQError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
    }
    return String(
      decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Sends one frame; `more` marks that another frame of the same message follows.
  /// libzmq takes over the frame's buffer. Returns false when `.dontWait` would block.
  @discardableResult
  public func send(_ message: Message, more: Bool = false, _ blocking: Blocking = .wait)
    throws(ZMQError) -> Bool
  {
    try send(message.pointer, more: more, blocking)
  }

  /// zmq_msg_send, retried on EINTR when blocking; false on EAGAIN. The one
  /// place both kinds of send go through.
  private func send(_ message: UnsafeMutablePointer<zmq_msg_t>, more: Bool, _ blocking: Blocking)
    throws(ZMQError) -> Bool
  {
    var flags: Int32 = more ? ZMQ_SNDMORE : 0
    if blocking == .dontWait { flags |= ZMQ_DONTWAIT }
    return try retrying("zmq_msg_send", blocking) { zmq_msg_send(message, handle, flags) }
  }

  /// Runs `call` (a zmq_msg_send or zmq_msg_recv), again after EINTR when
  /// blocking; false on EAGAIN, other errors thrown with their errno.
  private func retrying(_ name: String, _ blocking: Blocking, _ call: () -> Int32)
    throws(ZMQError) -> Bool
  {
    while call() < 0 {
      let error = ZMQError.last(name)
      if error.isInterrupted && blocking == .wait { continue }
      if error.isAgain { return false }
      throw error
    }
    return true
  }

  /// zmq_msg_recv, retried on EINTR when blocking; false on EAGAIN. The one
  /// place both kinds of receive go through.
  private func receive(into message: UnsafeMutablePointer<zmq_msg_t>, _ blocking: Blocking)
    throws(ZMQError) -> Bool
  {
    let flags: Int32 = blocking == .dontWait ? ZMQ_DONTWAIT : 0
    return try retrying("zmq_msg_recv", blocking) { zmq_msg_recv(message, handle, flags) }
  }

  /// Sends the frames of one multipart message. Returns false when `.dontWait`
  /// would block on the first frame; libzmq then sends none of them.
  @discardableResult
  public func send(multipart frames: [Message], _ blocking: Blocking = .wait) throws(ZMQError)
    -> Bool
  {
    for (index, frame) in frames.enumerated() {
      let sent = try send(frame, more: index < frames.count - 1, blocking)
      // Later frames of an accepted message are queued atomically by libzmq.
      if !sent { return false }
    }
    return true
  }

  /// Receives one frame, or nil when `.dontWait` finds none (or a receive timeout expires).
  public func receive(_ blocking: Blocking = .wait) throws(ZMQError) -> Message? {
    let message = Message()
    return try receive(into: message.pointer, blocking) ? message : nil
  }

  /// Receives all frames of one multipart message, or nil when none is waiting.
  /// At most `maximumFrames` frames are kept; extra frames are read and discarded
  /// and reported through `truncated`, so a hostile peer cannot exhaust memory.
  public func receiveMultipart(_ blocking: Blocking = .wait, maximumFrames: Int = 16)
    throws(ZMQError) -> (frames: [Message], truncated: Bool)?
  {
    guard let first = try receive(blocking) else { return nil }
    var frames = [first]
    var truncated = false
    var last = first
    while last.hasMore {
      // The rest of a multipart message is already here: libzmq delivers it atomically.
      guard let next = try receive(.wait) else { break }
      if frames.count < maximumFrames { frames.append(next) } else { truncated = true }
      last = next
    }
    return (frames, truncated)
  }

  /// Waits up to `timeoutMilliseconds` (-1 forever) for a message to read.
  /// Returns false on timeout or when a signal interrupts the wait. Allocates nothing.
  public func waitForInput(timeoutMilliseconds: Int) throws(ZMQError) -> Bool {
    var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
    if zmq_poll(&item, 1, timeoutMilliseconds) < 0 {
      let error = ZMQError.last("zmq_poll")
      if error.isInterrupted { return false }
      throw error
    }
    return (item.revents & Int16(ZMQ_POLLIN)) != 0
  }

  /// Receives one frame into a message on the stack and hands its bytes, and
  /// whether more frames follow, to `body`, without any heap allocation of ours.
  /// Returns nil when `.dontWait` finds nothing.
  public func receiveFrame<R>(
    _ blocking: Blocking = .wait, _ body: (UnsafeRawBufferPointer, _ more: Bool) -> R
  ) throws(ZMQError) -> R? {
    var message = zmq_msg_t()
    zmq_msg_init(&message)
    defer { zmq_msg_close(&message) }
    guard try receive(into: &message, blocking) else { return nil }
    let count = zmq_msg_size(&message)
    let bytes = UnsafeRawBufferPointer(
      start: count > 0 ? zmq_msg_data(&message) : nil, count: count)
    return body(bytes, zmq_msg_more(&message) != 0)
  }

  /// Sends a frame of `count` bytes written by `fill` straight into libzmq's
  /// buffer (a message on the stack: libzmq's own allocation is the only one).
  /// Returns false when `.dontWait` would block.
  @discardableResult
  public func sendFrame(
    count: Int, more: Bool = false, _ blocking: Blocking = .wait,
    fill: (UnsafeMutableRawBufferPointer) -> Void
  ) throws(ZMQError) -> Bool {
    var message = zmq_msg_t()
    guard zmq_msg_init_size(&message, count) == 0 else { throw ZMQError.last("zmq_msg_init_size") }
    fill(UnsafeMutableRawBufferPointer(start: zmq_msg_data(&message), count: count))
    do {
      if try send(&message, more: more, blocking) { return true }
      zmq_msg_close(&message)  // not sent: the buffer is still ours
      return false
    } catch {
      zmq_msg_close(&message)
      throw error
    }
  }

  /// Sends a copy of `bytes` as one frame.
  @discardableResult
  public func sendFrame(
    bytes: UnsafeRawBufferPointer, more: Bool = false, _ blocking: Blocking = .wait
  )
    throws(ZMQError) -> Bool
  {
    try sendFrame(count: bytes.count, more: more, blocking) { buffer in
      if let base = bytes.baseAddress, bytes.count > 0 {
        buffer.baseAddress!.copyMemory(from: base, byteCount: bytes.count)
      }
    }
  }
}
