import Foundation
import Metrics
import SystemCalls
import WireProtocol

/// Writes a server's checkpoints when `CheckpointSchedule` says so, says what
/// goes wrong (the first failure, then at most a line a minute, and the
/// recovery once), keeps the status report and the metrics up to date, and with
/// `required` has the server stop at the first failure instead of training on
/// without durability.
public final class Checkpointer {
  /// Where checkpoints go.
  public let store: CheckpointStore
  /// Whether a failed checkpoint stops the server.
  public let required: Bool
  /// The policy and what it knows.
  public private(set) var schedule: CheckpointSchedule
  /// Why the server must stop (with `required`, after a failure); nil otherwise.
  public private(set) var stopReason: String?
  private let metrics = CheckpointMetrics()
  /// The version the server started at: nothing to write on stop if it is still there.
  private let startVersion: UInt64
  private let log: (String) -> Void
  private let warn: (String) -> Void
  private let notice: (String) -> Void

  /// A checkpointer for `server` writing to `store` every `every` versions. A
  /// server resumed from `resumedFrom` (a checkpoint file of its current
  /// version) counts that file as its newest durable checkpoint. `log` hears
  /// routine lines, `warn` failures, `notice` the recovery.
  public init(
    store: CheckpointStore, every: UInt64, required: Bool = false, server: ParameterServer,
    resumedFrom: String? = nil, now: UInt64 = MonotonicClock.milliseconds(),
    log: @escaping (String) -> Void = { _ in }, warn: @escaping (String) -> Void = { _ in },
    notice: @escaping (String) -> Void = { _ in }
  ) {
    self.store = store
    self.required = required
    self.log = log
    self.warn = warn
    self.notice = notice
    startVersion = server.version
    var durable: (version: UInt64, at: UInt64)?
    if let resumedFrom {
      // Its age is the file's: the time it was written on the wall clock.
      let written = Self.modificationTime(resumedFrom) ?? Date().timeIntervalSince1970
      let age = UInt64(max(0, Date().timeIntervalSince1970 - written) * 1000)
      durable = (server.version, now - min(now, age))
      metrics.succeeded(version: server.version, unixSeconds: written)
    }
    schedule = CheckpointSchedule(every: every, version: server.version, now: now, durable: durable)
    server.checkpointHealth = schedule.health(now: now)
  }

  /// Writes a checkpoint of `server` if one is due at `now`. Returns false when
  /// the server must stop (`required` and the checkpoint failed).
  public func writeIfDue(_ server: ParameterServer, now: UInt64) -> Bool {
    guard schedule.isDue(version: server.version, now: now) else { return true }
    return write(server, now: now)
  }

  /// Makes the server's current state durable before an answer that ends a
  /// worker's work goes out, so that what the worker is told is done survives a
  /// crash: true when it is (already, or written now). False when the write
  /// failed: the answers wait, and the workers ask again.
  public func makeDurable(_ server: ParameterServer, now: UInt64) -> Bool {
    guard server.version != schedule.durable?.version ?? startVersion else { return true }
    return write(server, now: now) && schedule.durable?.version == server.version
  }

  /// The last checkpoint, when the server stops: written unless the newest
  /// durable one is of the current version, nothing changed since the start,
  /// or a failure already stopped the server. A failure here is always said: the updates since the newest
  /// durable checkpoint are lost when the process ends.
  public func writeFinal(_ server: ParameterServer, now: UInt64 = MonotonicClock.milliseconds()) {
    guard stopReason == nil, server.version != schedule.durable?.version ?? startVersion else {
      return
    }
    _ = write(server, now: now, final: true)
  }

  /// Updates the status report's ages (the server loop calls this every 100 ms).
  public func refresh(_ server: ParameterServer, now: UInt64) {
    server.checkpointHealth = schedule.health(now: now)
  }

  private func write(_ server: ParameterServer, now: UInt64, final: Bool = false) -> Bool {
    let version = server.version
    defer { refresh(server, now: now) }
    do {
      let path = try store.write(server.checkpoint)
      metrics.succeeded(version: version, unixSeconds: Date().timeIntervalSince1970)
      log("checkpoint at version \(version): \(path)")
      if let line = schedule.succeeded(version: version, now: now) { notice(line) }
      return true
    } catch {
      metrics.failed()
      let line = schedule.failed(version: version, error: "\(error)", now: now)
      if required {
        stopReason =
          "checkpoint at version \(version) failed: \(error); stopping, as --checkpoint-required asks: "
          + "\(schedule.durableText) (in \(store.directory)); make room and restart with --resume"
        return false
      }
      if final {
        warn(
          "final checkpoint at version \(version) failed: \(error); \(schedule.durableText): the updates after it are lost"
        )
      } else if let line {
        warn(line)
      }
      return true
    }
  }

  private static func modificationTime(_ path: String) -> Double? {
    try? FileIO.status(path).modificationTime
  }
}

/// The checkpoint metrics, for alerts: failed attempts, and the version and
/// Unix time of the newest durable checkpoint (exported from the first one on).
final class CheckpointMetrics {
  private let failures = Counter(label: "pstrain_checkpoint_failures_total")
  private var lastSuccess: (version: Gauge, timestamp: Gauge)?

  func failed() { failures.increment() }

  func succeeded(version: UInt64, unixSeconds: Double) {
    let gauges =
      lastSuccess
      ?? (
        Gauge(label: "pstrain_checkpoint_last_success_version"),
        Gauge(label: "pstrain_checkpoint_last_success_timestamp_seconds")
      )
    lastSuccess = gauges
    gauges.version.record(Double(version))
    gauges.timestamp.record(unixSeconds)
  }
}
