import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// The coordinator: subscribes to the server's applied gradients every N
/// versions, audits each against finite differences, and reports. The
/// subscription's protocol is `CoordinatorSession`; this loop moves its messages.
public final class CoordinatorLoop {
  private let connection: any ServerLink
  private let every: UInt64
  private let tolerance: Double
  /// The data the workers read: audit records name rows of it.
  private let dataset: Dataset
  /// Totals so far.
  public private(set) var tally = AuditTally()
  private let metrics = CoordinatorMetrics()
  private let readiness: Readiness?

  /// A coordinator auditing every `every` versions with `tolerance`, reading
  /// the audited rows from `dataset`; `readiness` is marked whenever the server
  /// confirms the subscription (at every renewal).
  public init(
    connection: any ServerLink, every: UInt64, tolerance: Double, dataset: Dataset,
    readiness: Readiness? = nil
  ) {
    self.connection = connection
    self.dataset = dataset
    self.every = every
    self.tolerance = tolerance
    self.readiness = readiness
  }

  /// Audits until `shouldStop` is true (or, with `stopWhen`, until it is
  /// satisfied), then ends the subscription, auditing every record the server
  /// sent before it acknowledged the end. `report` sees each audit.
  /// `subscribed` runs once, when the server has confirmed the subscription.
  public func run(
    timeoutMilliseconds: Int? = nil, stopWhen: (AuditTally) -> Bool = { _ in false },
    shouldStop: () -> Bool, subscribed: () -> Void = {}, report: (AuditReport) -> Void
  ) throws(RoleError) {
    var session = CoordinatorSession(every: every)
    let start = MonotonicClock.milliseconds()
    while true {
      let now = MonotonicClock.milliseconds()
      let timedOut = timeoutMilliseconds.map { now - start >= UInt64($0) } ?? false
      let stop = shouldStop() || stopWhen(tally) || timedOut
      for message in session.messagesToSend(now: now, stop: stop) { try connection.send(message) }
      if session.isFinished { return }
      guard
        let message = try connection.receive(
          timeoutMilliseconds: CoordinatorSession.pollMilliseconds,
          graceAfterStopMilliseconds: nil)
      else { continue }
      switch try session.receive(message) {
      case .audit(let record): try audit(record, report: report)
      case .confirmed:
        readiness?.markReady()
        subscribed()
      case .renewed: readiness?.markReady()
      case .none: break
      }
      if session.isFinished { return }
    }
  }

  /// A relative error the wire takes: at diverged weights the finite differences are
  /// inf − inf, a NaN error, which the server would refuse, ending the coordinator.
  static func finite(_ relativeError: Double) -> Double {
    relativeError.isNaN ? .greatestFiniteMagnitude : min(relativeError, .greatestFiniteMagnitude)
  }

  private func audit(_ record: AuditRecord, report: (AuditReport) -> Void) throws(RoleError) {
    let result = try AuditReport.audit(record, tolerance: tolerance, dataset: dataset)
    tally.add(result)
    metrics.record(result)
    // Tell the server, so `pstrain status` shows the latest verdict: the
    // relative error of the comparisons above rounding noise, or when there
    // are none, that the gradient was below it, and how large it was.
    let audit = result.audit
    try connection.send(
      .auditResult(
        AuditResult(
          workerID: result.workerID, sequence: result.sequence, passed: audit.passed,
          maximumRelativeError: Self.finite(
            audit.isConclusive ? audit.maximumRelativeError : audit.maximumRawRelativeError),
          conclusive: audit.isConclusive,
          gradientMagnitude: Self.finite(audit.gradientMagnitude))))
    report(result)
  }
}
