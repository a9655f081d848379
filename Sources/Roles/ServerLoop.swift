import TrainingMath
import WireProtocol
import ZeroMQ

/// Moves frames between a ROUTER socket and a `ParameterServer`. One thread
/// owns the socket; the state machine does the rest.
public final class ServerLoop {
  /// The state machine.
  public let server: ParameterServer
  /// The endpoint actually bound (a wildcard port resolved).
  public let boundEndpoint: String
  private let socket: Socket
  private let authenticator: ZAPHandler?
  private let metrics = ServerMetrics()

  /// Binds a ROUTER to `endpoint` for `server`. With `security` the socket is a
  /// CURVE server and only authorized client keys get in; `log` hears refusals.
  public init(
    server: ParameterServer, context: Context, endpoint: String, security: ServerSecurity? = nil,
    log: @escaping @Sendable (String) -> Void = { _ in }
  ) throws(ZMQError) {
    self.server = server
    authenticator = try security?.startAuthenticator(context: context, log: log)
    socket = try Socket(context, kind: .router)
    try socket.set(
      SocketDefaults.server(
        maximumMessageSize: SocketDefaults.maximumMessageSize(
          parameterCount: server.parameters.count)))
    if let security { try socket.set(security.socketOptions) }
    try socket.bind(endpoint)
    boundEndpoint = try socket.lastEndpoint()
  }

  deinit { authenticator?.stop() }

  /// Serves until `shouldStop` returns true (checked at least every 100 ms).
  /// Every 100 ms it drops workers that have gone silent. With a checkpoint
  /// store it writes a checkpoint every `checkpointEvery` versions and on stop.
  public func run(
    shouldStop: () -> Bool, checkpoints: CheckpointStore? = nil, checkpointEvery: UInt64 = 0,
    log: (String) -> Void = { _ in }
  ) throws(ZMQError) {
    var lastCheckpoint = server.version
    var lastTick = MonotonicClock.milliseconds()
    func checkpoint() {
      guard let checkpoints, server.version != lastCheckpoint else { return }
      do {
        let path = try checkpoints.write(server.checkpoint)
        lastCheckpoint = server.version
        log("checkpoint at version \(server.version): \(path)")
      } catch {
        log("checkpoint failed, the previous one is kept: \(error)")
      }
    }
    while !shouldStop() {
      if try socket.waitForInput(timeoutMilliseconds: 100) {
        // Drain what is queued before polling again.
        while let (frames, truncated) = try socket.receiveMultipart(.dontWait) {
          send(handle(frames: frames, truncated: truncated))
        }
      }
      let now = MonotonicClock.milliseconds()
      if now - lastTick >= 100 {
        lastTick = now
        let expired = server.expireSilentWorkers(now: now)
        for id in expired.dropped {
          log(
            "worker \(id) presumed dead: silent for over \(server.configuration.deadAfterMilliseconds) ms; dropped"
          )
        }
        send(expired.outgoing)
        metrics.update(from: server)
      }
      if checkpointEvery > 0, server.version >= lastCheckpoint + checkpointEvery { checkpoint() }
    }
    checkpoint()
  }

  private func handle(frames: [Message], truncated: Bool) -> [Outgoing] {
    let peer = PeerID(frames[0].bytes)
    guard frames.count == 2, !truncated else {
      return server.rejectUndecodable(
        .invalid(field: "frames", reason: "a request is exactly one frame"), from: peer)
    }
    let now = MonotonicClock.milliseconds()
    switch frames[1].decoded() {
    case .success(let message): return server.receive(message, from: peer, now: now)
    case .failure(let error): return server.rejectUndecodable(error, from: peer)
    }
  }

  private func send(_ outgoing: [Outgoing]) {
    for item in outgoing {
      let payload = Message(encoding: item.message)
      do {
        let sent = try socket.send(
          multipart: [Message(bytes: item.peer.bytes), payload], .dontWait)
        if !sent { server.deliveryFailed(item) }
      } catch {
        // EHOSTUNREACH: the peer disconnected. Its loss is counted, not fatal.
        server.deliveryFailed(item)
      }
    }
  }
}
