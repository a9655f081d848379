import SystemCalls
import WireProtocol
import ZeroMQ

/// Where a client's messages go: one server, or several server shards that
/// together hold the parameters. Workers, the coordinator, `status` and `audit`
/// talk through it.
public protocol ServerLink: AnyObject {
  /// The endpoint(s), for messages.
  var endpoint: String { get }
  /// Sends one message.
  func send(_ message: WireMessage) throws(RoleError)
  /// The next message, or nil if none arrives within `timeoutMilliseconds`.
  /// After a stop signal the wait is cut to `graceAfterStopMilliseconds` more
  /// (nil: signals do not shorten it).
  func receive(timeoutMilliseconds: Int, graceAfterStopMilliseconds: Int?) throws(RoleError)
    -> WireMessage?
  /// Hears, once per request, that no reply has come after
  /// `QuietWait.defaultMilliseconds` (nil: the wait stays silent).
  var quietWaitNotice: ((String) -> Void)? { get set }
}

extension ServerLink {
  /// The next message, cut short by a stop signal.
  public func receive(timeoutMilliseconds: Int) throws(RoleError) -> WireMessage? {
    try receive(timeoutMilliseconds: timeoutMilliseconds, graceAfterStopMilliseconds: 0)
  }

  /// Sends `message` and waits for the reply; `.error` replies become
  /// `RoleError.refused`. A stop signal cuts the wait as in `receive`.
  public func request(
    _ message: WireMessage, timeoutMilliseconds: Int, what: String,
    graceAfterStopMilliseconds: Int? = 0
  ) throws(RoleError) -> WireMessage {
    try send(message)
    // The first part of the wait is silent; then, if the wait goes on, say so.
    let quiet = quietWaitNotice == nil ? timeoutMilliseconds : Int(QuietWait.defaultMilliseconds)
    var reply = try receive(
      timeoutMilliseconds: min(timeoutMilliseconds, quiet),
      graceAfterStopMilliseconds: graceAfterStopMilliseconds)
    if reply == nil, timeoutMilliseconds > quiet, !ShutdownSignal.isRequested,
      let quietWaitNotice
    {
      quietWaitNotice(QuietWait.noAnswer(from: endpoint))
      reply = try receive(
        timeoutMilliseconds: timeoutMilliseconds - quiet,
        graceAfterStopMilliseconds: graceAfterStopMilliseconds)
    }
    guard let reply else {
      if ShutdownSignal.isRequested { throw .interrupted }
      throw .timedOut(what: "\(what) from \(endpoint)", milliseconds: timeoutMilliseconds)
    }
    if case .error(let error) = reply { throw .refused(error) }
    return reply
  }

  /// Asks for the server's status.
  public func status(timeoutMilliseconds: Int) throws(RoleError) -> ServerStatus {
    let reply = try request(
      .statusRequest, timeoutMilliseconds: timeoutMilliseconds, what: "status")
    guard case .status(let status) = reply else {
      throw .unexpectedReply(expected: "status", got: "\(reply.type)")
    }
    return status
  }
}

/// A client's DEALER connection to one server: send a message, wait a bounded
/// time for what comes back.
public final class ServerConnection: ServerLink {
  /// The server endpoint.
  public let endpoint: String
  public var quietWaitNotice: ((String) -> Void)?
  private let socket: Socket
  /// The last message received: the next weights reply is decoded into its
  /// storage, so a worker's steady state decodes without allocating.
  private var incoming = WireMessage.weights(WeightsReply(version: 0, parameters: .empty))

  /// Connects to `endpoint` (the connection completes in the background). A
  /// fixed `routingID` lets the server recognise this client after a reconnect.
  public init(
    context: Context, endpoint: String, parameterCount: Int = 1 << 20, routingID: [UInt8]? = nil,
    security: ClientSecurity? = nil
  ) throws(RoleError) {
    self.endpoint = endpoint
    do {
      socket = try Socket(context, kind: .dealer)
      try socket.set(
        SocketDefaults.client(
          maximumMessageSize: SocketDefaults.maximumMessageSize(parameterCount: parameterCount)))
      if let routingID { try socket.set(.routingID(routingID)) }
      if let security { try socket.set(security.socketOptions) }
      try socket.connect(endpoint)
    } catch {
      throw .transport(error)
    }
  }

  /// Adds this connection's socket to `poller`, to wait on several at once.
  func addInput(to poller: inout Poller) { poller.add(socket) }

  /// Sends one message.
  /// Never blocks: when the server has been unreachable long enough for the
  /// queue to fill, the message is dropped, as if lost on the way. Every request
  /// is retried or bounded by a timeout, so nothing waits forever on a dead server.
  public func send(_ message: WireMessage) throws(RoleError) {
    do {
      try socket.sendFrame(encoding: message, .dontWait)
    } catch {
      throw .transport(error)
    }
  }

  /// The next message, or nil if none arrives within `timeoutMilliseconds`.
  /// After a stop signal the wait is cut to `graceAfterStopMilliseconds` more
  /// (nil: signals do not shorten it). A frame that does not decode is an error.
  public func receive(timeoutMilliseconds: Int, graceAfterStopMilliseconds: Int?)
    throws(RoleError) -> WireMessage?
  {
    var deadline = MonotonicClock.milliseconds() + UInt64(max(0, timeoutMilliseconds))
    var sawStop = false
    while true {
      let decoded: Result<Void, DecodeError>?
      do {
        decoded = try receiveQueuedMessage()
      } catch {
        throw .transport(error)
      }
      if let decoded {
        switch decoded {
        case .success:
          let message = incoming
          if !message.isWorthReusing { incoming = .statusRequest }
          return message
        case .failure(let error): throw .undecodable(error)
        }
      }
      let now = MonotonicClock.milliseconds()
      if let grace = graceAfterStopMilliseconds, !sawStop, ShutdownSignal.isRequested {
        sawStop = true
        deadline = min(deadline, now + UInt64(grace))
      }
      if now >= deadline { return nil }
      do {
        _ = try socket.waitForInput(timeoutMilliseconds: Int(min(deadline - now, 100)))
      } catch {
        throw .transport(error)
      }
    }
  }

  /// Reads a message if one is queued and decodes it into `incoming`, in
  /// libzmq's buffers; nil when none is queued.
  private func receiveQueuedMessage() throws(ZMQError) -> Result<Void, DecodeError>? {
    try socket.receiveMessage(.dontWait, decodingInto: &incoming)
  }
}
