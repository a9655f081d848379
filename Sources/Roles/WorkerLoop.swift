import TrainingMath
import WireProtocol
import ZeroMQ

/// Runs a `WorkerSession` over a `ServerConnection`: every message the session
/// wants sent goes out, and the reply comes back to it, until it finishes.
public enum WorkerLoop {
  /// Progress passed to the caller about once a second and at the end.
  public struct Progress: Sendable {
    /// Epoch being worked on, 0-based.
    public var epoch: Int
    /// Gradients applied.
    public var pushesApplied: UInt64
    /// Latest weights version received.
    public var version: UInt64
    /// Mean loss of the last full epoch.
    public var epochLoss: Double
  }

  /// How long a worker still waits for an outstanding reply after a stop
  /// signal, so that it can leave the membership cleanly.
  public static let stopGraceMilliseconds = 5000

  /// Runs the session to completion. Each reply must arrive within
  /// `replyTimeoutMilliseconds`. On a stop signal the worker waits for its
  /// outstanding reply (at most `stopGraceMilliseconds`), leaves, and throws
  /// `.interrupted`.
  public static func run<Model: DifferentiableModel>(
    _ session: WorkerSession<Model>, connection: ServerConnection, replyTimeoutMilliseconds: Int,
    progress: (Progress) -> Void
  ) throws(RoleError) {
    var message = session.start()
    var lastReport = MonotonicClock.milliseconds()
    func report() {
      progress(
        Progress(
          epoch: session.epoch, pushesApplied: session.pushesApplied, version: session.version,
          epochLoss: session.epochLoss))
    }
    while true {
      let reply = try connection.request(
        message, timeoutMilliseconds: replyTimeoutMilliseconds, what: "reply to \(message.type)",
        graceAfterStopMilliseconds: stopGraceMilliseconds)
      let step = try session.receive(reply)
      guard case .send(let next) = step else { break }
      message = next
      if ShutdownSignal.isRequested, case .push = next {
        // Leave rather than push again, so the server drops us from the membership.
        _ = try connection.request(
          .leave(workerID: session.workerID), timeoutMilliseconds: stopGraceMilliseconds,
          what: "reply to leave", graceAfterStopMilliseconds: nil)
        report()
        throw .interrupted
      }
      let now = MonotonicClock.milliseconds()
      if now - lastReport >= 1000 {
        lastReport = now
        report()
      }
    }
    report()
  }
}
