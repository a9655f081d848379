import TrainingMath
import WireProtocol
import ZeroMQ

/// The coordinator: subscribes to the server's applied gradients every N
/// versions, audits each against finite differences, and reports.
public final class CoordinatorLoop {
  /// How long a subscription lives without renewal.
  public static let leaseMilliseconds: UInt32 = 6000

  private let connection: any ServerLink
  private let every: UInt64
  private let tolerance: Double
  /// Totals so far.
  public private(set) var tally = AuditTally()
  private let metrics = CoordinatorMetrics()
  private let readiness: Readiness?

  /// A coordinator auditing every `every` versions with `tolerance`; `readiness` is marked
  /// whenever the server confirms the subscription (at every renewal).
  public init(
    connection: any ServerLink, every: UInt64, tolerance: Double, readiness: Readiness? = nil
  ) {
    self.connection = connection
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
    let subscribe = WireMessage.auditSubscribe(
      AuditSubscription(every: every, leaseMilliseconds: Self.leaseMilliseconds))
    try connection.send(subscribe)
    let start = MonotonicClock.milliseconds()
    var lastRenewal = start
    var confirmed = false
    while !shouldStop() && !stopWhen(tally) {
      let now = MonotonicClock.milliseconds()
      if let limit = timeoutMilliseconds, now - start >= UInt64(limit) { break }
      if now - lastRenewal >= UInt64(Self.leaseMilliseconds / 3) {
        try connection.send(subscribe)
        lastRenewal = now
      }
      guard
        let message = try connection.receive(
          timeoutMilliseconds: 100, graceAfterStopMilliseconds: nil)
      else { continue }
      if case .subscription = message {
        readiness?.markReady()
        if !confirmed {
          confirmed = true
          subscribed()
        }
      }
      try handle(message, report: report)
    }
    // End the subscription; records sent before the acknowledgement arrive before it.
    try connection.send(.auditSubscribe(AuditSubscription(every: 0, leaseMilliseconds: 1)))
    let deadline = MonotonicClock.milliseconds() + 3000
    while MonotonicClock.milliseconds() < deadline {
      guard
        let message = try connection.receive(
          timeoutMilliseconds: 100, graceAfterStopMilliseconds: nil)
      else { continue }
      if case .subscription(let state) = message, state.every == 0 { return }
      try handle(message, report: report)
    }
  }

  private func handle(_ message: WireMessage, report: (AuditReport) -> Void) throws(RoleError) {
    switch message {
    case .auditRecord(let record):
      let result = try AuditReport.audit(record, tolerance: tolerance)
      tally.add(result)
      metrics.record(result)
      // Tell the server, so `pstrain status` shows the latest verdict.
      try connection.send(
        .auditResult(
          AuditResult(
            workerID: result.workerID, sequence: result.sequence, passed: result.audit.passed,
            maximumRelativeError: min(
              result.audit.maximumRawRelativeError, .greatestFiniteMagnitude))))
      report(result)
    case .subscription:
      break
    case .error(let error):
      throw .refused(error)
    default:
      throw .unexpectedReply(expected: "audit records", got: "\(message.type)")
    }
  }
}
