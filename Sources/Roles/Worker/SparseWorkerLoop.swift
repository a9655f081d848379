import SystemCalls
import WireProtocol

/// Runs a `SparseWorkerSession` over a `ServerLink` (one server, or shards
/// that `ShardedServerLink` cuts sparse requests for): sends what the session
/// asks for, waits on the sockets until the session's next time, and feeds it
/// the answers, until it has left.
public enum SparseWorkerLoop {
  /// Progress passed to the caller about once a second and at the end: the dense
  /// worker's (pushes applied are the batches pushed and acknowledged).
  public typealias Progress = WorkerLoop.Progress

  /// Runs the session to completion. On a stop signal the worker finishes the
  /// batches in flight (within the grace period), leaves and throws `.interrupted`;
  /// when a wait is long, `notice` hears what it waits for.
  public static func run(
    _ session: SparseWorkerSession, connection: any ServerLink, timing: RequestPolicy.Timing,
    readiness: Readiness? = nil, notice: (String) -> Void = { _ in },
    progress: (Progress) -> Void
  ) throws(RoleError) {
    let connection = MeteredLink(link: connection, metrics: WorkerMetrics())
    func report() {
      connection.metrics.trainLoss.record(session.drainRecentLoss())
      progress(
        Progress(
          epoch: session.epoch, pushesApplied: session.pushesApplied, version: session.version,
          epochLoss: session.epochLoss))
    }
    try connection.send(
      session.start(now: MonotonicClock.milliseconds(), timing: timing, server: connection.endpoint)
    )
    while !session.isFinished {
      let now = MonotonicClock.milliseconds()
      switch try session.nextAction(now: now, stop: ShutdownSignal.isRequested) {
      case .send(let messages):
        for message in messages { try connection.send(message) }
      case .notice(let wait):
        if let line = session.unsaid(wait.line(describedBy: { _ in nil })) { notice(line) }
      case .wait(let until):
        guard
          let reply = try connection.receive(
            timeoutMilliseconds: Int(until - min(until, now)),
            graceAfterStopMilliseconds: session.isStopping ? nil : 0)
        else { continue }
        let arrived = MonotonicClock.milliseconds()
        readiness?.markReady(now: arrived)
        for message in try session.receive(reply, now: arrived, stop: ShutdownSignal.isRequested) {
          try connection.send(message)
        }
        if session.isProgressReportDue(now: arrived) { report() }
      }
    }
    report()
    if let divergence = session.divergence { throw divergence }
    if ShutdownSignal.isRequested { throw .interrupted }
  }
}
