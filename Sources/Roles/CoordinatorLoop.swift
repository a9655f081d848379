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

  /// A coordinator auditing every `every` versions with `tolerance`.
  public init(connection: any ServerLink, every: UInt64, tolerance: Double) {
    self.connection = connection
    self.every = every
    self.tolerance = tolerance
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
      if case .subscription = message, !confirmed {
        confirmed = true
        subscribed()
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
      // Tell the server, so `pstrain status` shows the latest verdict: the
      // relative error of the comparisons above rounding noise, or when there
      // are none, that the gradient was below it, and how large it was.
      let audit = result.audit
      try connection.send(
        .auditResult(
          AuditResult(
            workerID: result.workerID, sequence: result.sequence, passed: audit.passed,
            maximumRelativeError: min(
              audit.isConclusive ? audit.maximumRelativeError : audit.maximumRawRelativeError,
              .greatestFiniteMagnitude),
            conclusive: audit.isConclusive,
            gradientMagnitude: min(audit.gradientMagnitude, .greatestFiniteMagnitude))))
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
