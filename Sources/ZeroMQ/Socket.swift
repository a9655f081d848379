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
    return try sendClosingIfUnsent(&message, more: more, blocking)
  }

  /// Sends `bytes` as one frame without copying them: libzmq reads them in
  /// place while it sends, then releases `owner`, from one of its own threads.
  /// The bytes must stay valid and unchanged for as long as `owner` lives (an
  /// owner holding a copy-on-write array's storage guarantees it: a writer then
  /// copies). Returns false when `.dontWait` would block.
  @discardableResult
  public func sendFrame(
    referencing bytes: UnsafeRawBufferPointer, owner: AnyObject, more: Bool = false,
    _ blocking: Blocking = .wait
  ) throws(ZMQError) -> Bool {
    var message = zmq_msg_t()
    let hint = Unmanaged.passRetained(owner).toOpaque()
    guard
      zmq_msg_init_data(
        &message, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count,
        releaseFrameOwner, hint) == 0
    else {
      Unmanaged<AnyObject>.fromOpaque(hint).release()
      throw ZMQError.last("zmq_msg_init_data")
    }
    return try sendClosingIfUnsent(&message, more: more, blocking)
  }

  /// Sends `message`; when it is not sent, closes it (its buffer is still ours).
  private func sendClosingIfUnsent(
    _ message: inout zmq_msg_t, more: Bool, _ blocking: Blocking
  ) throws(ZMQError) -> Bool {
    do {
      if try send(&message, more: more, blocking) { return true }
      zmq_msg_close(&message)
      return false
    } catch {
      zmq_msg_close(&message)
      throw error
    }
  }

  /// Receives one whole message and hands its frames' bytes, read in place, to
  /// `body`. At most `maximumFrames` are kept; more are read and dropped, and
  /// counted in `dropped`, so a hostile peer cannot exhaust memory. A message of
  /// one frame costs no heap allocation of ours. Returns false when `.dontWait`
  /// finds none. (Not generic: a generic function called from another module
  /// looks up type metadata at run time, on every message.)
  public func receiveMessage(
    _ blocking: Blocking = .wait, maximumFrames: Int, _ body: (ReceivedFrames) -> Void
  ) throws(ZMQError) -> Bool {
    // On the stack, at an address that stays put: a frame of up to 33 bytes
    // lives inside the zmq_msg_t itself.
    try withUnsafeTemporaryAllocation(of: zmq_msg_t.self, capacity: 1) {
      (storage) throws(ZMQError) -> Bool in
      let first = storage.baseAddress!
      first.initialize(to: zmq_msg_t())
      zmq_msg_init(first)
      defer { zmq_msg_close(first) }
      guard try receive(into: first, blocking) else { return false }
      try receiveRest(after: first, maximumFrames: maximumFrames, body)
      return true
    }
  }

  /// The frames after `first` (if any) of the message being received, and `body`.
  private func receiveRest(
    after first: UnsafeMutablePointer<zmq_msg_t>, maximumFrames: Int,
    _ body: (ReceivedFrames) -> Void
  ) throws(ZMQError) {
    guard zmq_msg_more(first) != 0 else {
      body(ReceivedFrames(first: Self.bytes(of: first), later: [], dropped: 0))
      return
    }
    let kept = max(0, maximumFrames - 1)
    let later = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: max(1, kept))
    var count = 0
    var dropped = 0
    defer {
      for index in 0..<count { zmq_msg_close(later + index) }
      later.deallocate()
    }
    var more = true
    while more {
      // The rest of a multipart message is already here: libzmq delivers it atomically.
      var frame = zmq_msg_t()
      zmq_msg_init(&frame)
      guard try receive(into: &frame, .wait) else {
        zmq_msg_close(&frame)
        break
      }
      more = zmq_msg_more(&frame) != 0
      if count < kept {
        (later + count).initialize(to: zmq_msg_t())
        zmq_msg_init(later + count)
        zmq_msg_move(later + count, &frame)
        count += 1
      } else {
        dropped += 1
      }
      zmq_msg_close(&frame)
    }
    let buffers = (0..<count).map { Self.bytes(of: later + $0) }
    body(ReceivedFrames(first: Self.bytes(of: first), later: buffers, dropped: dropped))
  }

  private static func bytes(of message: UnsafeMutablePointer<zmq_msg_t>) -> UnsafeRawBufferPointer {
    let count = zmq_msg_size(message)
    return UnsafeRawBufferPointer(start: count > 0 ? zmq_msg_data(message) : nil, count: count)
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

/// The frames of one received message, valid only inside the call that hands
/// them over (they are libzmq's buffers).
public struct ReceivedFrames {
  /// The first frame.
  public let first: UnsafeRawBufferPointer
  /// The frames after it that were kept.
  public let later: [UnsafeRawBufferPointer]
  /// Frames read beyond the kept ones and dropped.
  public let dropped: Int
}

/// libzmq's deallocation function for frames sent by reference: releases the
/// owner `Socket.sendFrame(referencing:owner:)` retained.
private let releaseFrameOwner:
  @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?)
    -> Void = { _, hint in
      if let hint { Unmanaged<AnyObject>.fromOpaque(hint).release() }
    }
