import SystemCalls
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
  /// The last request decoded: the next one of the same kind is decoded into its
  /// storage, so a steady stream of pushes is decoded without allocating.
  private var incoming = WireMessage.push(.empty)

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
          parameterCount: server.store.count)))
    if let security { try socket.set(security.socketOptions) }
    try socket.bind(endpoint)
    boundEndpoint = try socket.lastEndpoint()
  }

  deinit { authenticator?.stop() }

  /// Serves until `shouldStop` returns true (checked at least every 100 ms).
  /// Every 100 ms it drops workers that have gone silent. With a checkpointer it
  /// writes checkpoints when they are due and a last one on stop, and makes the
  /// state durable before any answer that ends a worker's work (`left`, or "no
  /// rows left" of a leased job): what a worker was told is done survives a
  /// crash. If that checkpoint fails, those answers are not sent (the workers ask
  /// again). A failed checkpoint that must stop the server
  /// (`Checkpointer.required`) ends the loop at once, without a last checkpoint
  /// (`Checkpointer.stopReason` says why). With `tensorBoard` it writes the
  /// throughput, staleness and learning rate there as `ServerScalarCadence`
  /// says, and a last point when the loop ends.
  public func run(
    shouldStop: () -> Bool, checkpoints: Checkpointer? = nil,
    tensorBoard: TensorBoardEventFile? = nil, log: (String) -> Void = { _ in }
  ) throws(ZMQError) {
    var lastTick = MonotonicClock.milliseconds()
    var cadence = ServerScalarCadence()
    cadence.start(now: lastTick, version: server.version, samples: server.rowsApplied)
    defer {
      if let tensorBoard {
        cadence.observe(staleness: server.drainStaleness())
        writeScalars(&cadence, to: tensorBoard, now: MonotonicClock.milliseconds(), final: true)
      }
    }
    var durableAnswers: [Outgoing] = []
    var quarantinesLogged = 0
    while !shouldStop() {
      if try socket.waitForInput(timeoutMilliseconds: 100) {
        // Drain what is queued before polling again.
        while let outgoing = try receiveRequest() {
          guard checkpoints != nil, Self.endsWork(outgoing) else {
            send(outgoing)
            continue
          }
          send(outgoing.filter { !$0.endsWork })
          durableAnswers += outgoing.filter(\.endsWork)
        }
        // One checkpoint for all the answers that wait for one.
        if let checkpoints, !durableAnswers.isEmpty {
          if checkpoints.makeDurable(server, now: MonotonicClock.milliseconds()) {
            send(durableAnswers)
          }
          durableAnswers.removeAll()
          if checkpoints.stopReason != nil { return }
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
        quarantinesLogged = logQuarantines(after: quarantinesLogged, log: log)
        checkpoints?.refresh(server, now: now)
        let staleness = server.drainStaleness()
        metrics.update(from: server, staleness: staleness)
        if let tensorBoard {
          cadence.observe(staleness: staleness)
          writeScalars(&cadence, to: tensorBoard, now: now, final: false)
        }
      }
      if let checkpoints, !checkpoints.writeIfDue(server, now: now) { return }
    }
    checkpoints?.writeFinal(server)
  }

  /// Writes the point `cadence` has due at `now` (with `final`, the last one) to `tensorBoard`.
  private func writeScalars(
    _ cadence: inout ServerScalarCadence, to tensorBoard: TensorBoardEventFile, now: UInt64,
    final: Bool
  ) {
    let learningRate =
      server.keyed?.table.optimizer.learningRate ?? server.optimizer.currentLearningRate
    if let point = cadence.due(
      now: now, version: server.version, samples: server.rowsApplied,
      learningRate: learningRate, final: final)
    {
      tensorBoard.write(step: point.step, point.scalars)
    }
  }

  /// Logs the workers quarantined after the first `logged`; returns how many are logged.
  private func logQuarantines(after logged: Int, log: (String) -> Void) -> Int {
    let quarantined = server.quarantineList.workers
    guard quarantined.count > logged else { return logged }
    for worker in quarantined.dropFirst(logged) {
      log(
        "quarantined worker \(worker.workerID): its push \(worker.sequence) failed \(worker.failureText), confirmed; "
          + (worker.rolledBackTo.map {
            "rolled back from version \(worker.quarantinedAtVersion) to \($0)"
          } ?? "not rolled back"))
    }
    return quarantined.count
  }

  /// Whether an answer in `outgoing` ends a worker's work (a plain loop: this
  /// runs for every request).
  private static func endsWork(_ outgoing: [Outgoing]) -> Bool {
    for item in outgoing where item.endsWork { return true }
    return false
  }

  /// Reads one request — the peer's routing id, then the message's frames,
  /// decoded in place (a large gradient's values are not even copied out) —
  /// and returns what to send back; nil when none is queued.
  private func receiveRequest() throws(ZMQError) -> [Outgoing]? {
    guard
      let (peer, more) = try socket.receiveFrame(
        .dontWait, { bytes, more in (PeerID(bytes), more) })
    else { return nil }
    guard more else {
      return server.rejectUndecodable(
        .truncated(field: "payload", needed: 4, remaining: 0), from: peer)
    }
    var answers: [Outgoing]?
    _ = try socket.receiveMessage(.wait, maximumFrames: WireCodec.maximumFrames) { frames in
      var pushValues: BorrowedValues?
      do throws(DecodeError) {
        try frames.checkCount()
        try WireCodec.decode(
          frames.first, later: frames.later, reusing: &incoming, pushValuesInPlace: &pushValues)
      } catch {
        answers = server.rejectUndecodable(error, from: peer)
        return
      }
      defer { if !incoming.isWorthReusing { incoming = .push(.empty) } }
      // A large gradient is applied where it arrived: libzmq's buffers live
      // until this closure returns.
      answers = server.receive(
        incoming, pushValuesInPlace: pushValues, from: peer, now: MonotonicClock.milliseconds())
    }
    return answers
  }

  /// Sends each message as [routing id, payload], the payload encoded straight
  /// into libzmq's buffer. A peer that is gone (EHOSTUNREACH) or whose queue is
  /// full gets nothing, and the loss is counted, not fatal.
  private func send(_ outgoing: [Outgoing]) {
    for item in outgoing {
      do {
        let routed = try item.peer.withUnsafeBytes { (identity) throws(ZMQError) in
          try socket.sendFrame(bytes: identity, more: true, .dontWait)
        }
        guard routed else {
          server.deliveryFailed(item)
          continue
        }
        // The rest of a message whose first frame was accepted cannot fail to queue.
        try socket.sendFrame(encoding: item.message)
      } catch {
        server.deliveryFailed(item)
      }
    }
  }
}

extension Outgoing {
  /// Whether this answer tells a worker its work is over (it left, or a leased
  /// job has no rows left): with checkpoints, sent only once the state is durable.
  var endsWork: Bool {
    switch message {
    case .left: true
    case .noLease(let answer): answer.finished
    default: false
    }
  }
}
