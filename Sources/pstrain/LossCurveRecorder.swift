import Foundation
import Roles
import Synchronization
import SystemCalls
import TrainingMath
import WireProtocol

/// The loss curve of `train --plot`, sampled by version, not by time: a fast run
/// makes a thousand updates between two status polls. The recorder subscribes to
/// the server's audit records like a coordinator (the same `CoordinatorSession`), every `every` versions, and
/// takes from each record the weights its gradient was computed at: the loss over
/// the whole data at those weights is one point, at that version. It audits
/// nothing. Runs on a thread of its own with its own connection (ZeroMQ sockets
/// stay on one thread).
final class LossCurveRecorder: Sendable {
  private let points = Mutex<[UInt64: Double]>([:])
  private let stopRequested = Atomic<Bool>(false)
  private let done = DispatchSemaphore(value: 0)
  private let failure = Mutex<String?>(nil)

  /// Starts recording from the server(s) at `endpoint`.
  init(endpoint: String, every: UInt64, model: AnyDifferentiableModel, dataset: Dataset) {
    Thread.detachNewThread { [self] in
      defer { done.signal() }
      do {
        try record(endpoint: endpoint, every: every, objective: Objective(model: model), dataset)
      } catch {
        failure.withLock { $0 = "\(error)" }
      }
    }
  }

  /// The subscription period for `versions` expected versions: 200 points, so that
  /// points stay within 1% of the run of each other even when a record's gradient
  /// was computed a few versions before its period began.
  static func period(forExpectedVersions versions: Int) -> UInt64 {
    UInt64(max(1, versions / 200))
  }

  private func record(
    endpoint: String, every: UInt64, objective: Objective<AnyDifferentiableModel>,
    _ dataset: Dataset
  ) throws {
    let (context, link) = try ConnectOptions.parse(["--connect", endpoint]).open()
    defer { withExtendedLifetime(context) {} }
    var session = CoordinatorSession(every: every)
    while true {
      let stop = stopRequested.load(ordering: .relaxed)
      for message in session.messagesToSend(now: MonotonicClock.milliseconds(), stop: stop) {
        try link.send(message)
      }
      if session.isFinished { return }
      guard
        let message = try link.receive(
          timeoutMilliseconds: CoordinatorSession.pollMilliseconds, graceAfterStopMilliseconds: nil)
      else { continue }
      guard case .audit(let record) = try session.receive(message) else { continue }
      let version = record.computedAtVersion
      guard points.withLock({ $0[version] == nil }) else { continue }  // one per version
      let loss = objective.loss(weights: record.weights.values, dataset: dataset)
      points.withLock { $0[version] = loss }
    }
  }

  /// Stops recording (waiting at most 3 s) and returns the points, by version, and
  /// why recording stopped early, if it did.
  func finish() -> (points: [(Double, Double)], failure: String?) {
    stopRequested.store(true, ordering: .relaxed)
    _ = done.wait(timeout: .now() + 3)
    let sorted = points.withLock { $0.sorted { $0.key < $1.key } }
    return (sorted.map { (Double($0.key), $0.value) }, failure.withLock { $0 })
  }
}
