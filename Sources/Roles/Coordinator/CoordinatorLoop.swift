import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// The coordinator: subscribes to the server's applied gradients every N
/// versions, audits each against finite differences, and reports. With held-out
/// data it also evaluates the server's weights on it every M versions and at the
/// end, a slice at a time between messages so that audits are not held up, and
/// reports each evaluation to the server. The protocol is `CoordinatorSession`;
/// this loop moves its messages.
public final class CoordinatorLoop {
  private let connection: any ServerLink
  private let every: UInt64
  private let tolerance: Double
  /// The checks made of every record.
  public let checks: AuditChecks
  /// How replays compare.
  public let replayMode: ReplayMode
  /// The data the workers read: audit records name rows of it.
  private let dataset: Dataset
  /// Totals so far.
  public private(set) var tally = AuditTally()
  private let metrics = CoordinatorMetrics()
  private let readiness: Readiness?
  /// What to evaluate on, and how often (nil: no evaluations).
  private let heldOut: HeldOutData?
  /// The evaluation under way, and the status it is of.
  private var running:
    (evaluation: EvaluationInProgress<AnyDifferentiableModel>, version: UInt64, final: Bool)?
  /// The last evaluation finished.
  private var lastEvaluation: HeldOutEvaluation?
  /// An evaluation to report with nothing to compute.
  private var ready: HeldOutEvaluation?
  /// The longest an evaluation runs at a time before the loop looks for messages
  /// again (one batch at least).
  public static let evaluationSliceMilliseconds: UInt64 = 5

  /// A coordinator auditing every `every` versions by `checks` (finite
  /// differences with `tolerance`, replays by `replayMode`), reading the
  /// audited rows from `dataset`; `readiness` is marked whenever the server
  /// confirms the subscription (at every renewal). With `heldOut`, it also
  /// evaluates the server's weights on that data as its schedule says.
  public init(
    connection: any ServerLink, every: UInt64, tolerance: Double, dataset: Dataset,
    checks: AuditChecks = .all, replayMode: ReplayMode = .exact,
    readiness: Readiness? = nil, heldOut: HeldOutData? = nil
  ) {
    self.checks = checks
    self.replayMode = replayMode
    self.heldOut = heldOut
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
  /// `evaluated` sees each evaluation on the held-out data, the last one final.
  public func run(
    timeoutMilliseconds: Int? = nil, stopWhen: (AuditTally) -> Bool = { _ in false },
    shouldStop: () -> Bool, subscribed: () -> Void = {},
    evaluated: (HeldOutEvaluation) -> Void = { _ in }, report: (AuditReport) -> Void
  ) throws(RoleError) {
    var session = CoordinatorSession(
      every: every, evaluation: heldOut.map { EvaluationSchedule(every: $0.every) })
    let start = MonotonicClock.milliseconds()
    while true {
      let now = MonotonicClock.milliseconds()
      let timedOut = timeoutMilliseconds.map { now - start >= UInt64($0) } ?? false
      let stop = shouldStop() || stopWhen(tally) || timedOut
      for message in session.messagesToSend(now: now, stop: stop) { try connection.send(message) }
      if session.isFinished { return }
      // While an evaluation is under way, only look for messages between its slices.
      if let message = try connection.receive(
        timeoutMilliseconds: running == nil && ready == nil
          ? CoordinatorSession.pollMilliseconds : 0,
        graceAfterStopMilliseconds: nil)
      {
        switch try session.receive(message) {
        case .audit(let record): try audit(record, report: report)
        case .confirmed:
          readiness?.markReady()
          subscribed()
        case .renewed: readiness?.markReady()
        case .evaluate(let status, let final): try startEvaluation(of: status, final: final)
        case .none: break
        }
      }
      if let finished = evaluateSlice() {
        lastEvaluation = finished
        session.evaluated(version: finished.version)
        try connection.send(.evaluation(finished.report))
        evaluated(finished)
      }
      if session.isFinished { return }
    }
  }

  /// Starts evaluating the weights of `status` on the held-out data.
  private func startEvaluation(of status: ServerStatus, final: Bool) throws(RoleError) {
    guard let heldOut else { return }
    guard status.parameters.values.count == heldOut.model.parameterCount else {
      throw .invalidArgument(
        "the server sent \(status.parameters.values.count) parameters, its model \(heldOut.model.name) has \(heldOut.model.parameterCount): evaluations need every parameter (connect to every server shard)"
      )
    }
    if final, let last = lastEvaluation, last.version == status.version {
      // The final weights were evaluated already: that evaluation is the final one.
      ready = HeldOutEvaluation(version: last.version, result: last.result, isFinal: true)
      return
    }
    running = (
      EvaluationInProgress(
        objective: Objective(model: heldOut.model), weights: status.parameters.values,
        dataset: heldOut.dataset),
      status.version, final
    )
  }

  /// Evaluates batches of the evaluation under way for up to
  /// `evaluationSliceMilliseconds`; returns it once complete.
  private func evaluateSlice() -> HeldOutEvaluation? {
    if let ready {
      self.ready = nil
      return ready
    }
    guard var current = running else { return nil }
    let start = MonotonicClock.milliseconds()
    repeat {
      current.evaluation.advance()
    } while !current.evaluation.isComplete
      && MonotonicClock.milliseconds() - start < Self.evaluationSliceMilliseconds
    guard current.evaluation.isComplete else {
      running = current
      return nil
    }
    running = nil
    return HeldOutEvaluation(
      version: current.version, result: current.evaluation.evaluation, isFinal: current.final)
  }

  /// A relative error the wire takes: at diverged weights the finite differences are
  /// inf − inf, a NaN error, which the server would refuse, ending the coordinator.
  static func finite(_ relativeError: Double) -> Double {
    relativeError.isNaN ? .greatestFiniteMagnitude : min(relativeError, .greatestFiniteMagnitude)
  }

  private func audit(_ record: AuditRecord, report: (AuditReport) -> Void) throws(RoleError) {
    let result = try AuditReport.audit(
      record, checks: checks, tolerance: tolerance, replayMode: replayMode, dataset: dataset)
    tally.add(result)
    metrics.record(result)
    try connection.send(.auditResult(Self.result(of: result)))
    report(result)
  }

  /// The verdict sent to the server, so `pstrain status` shows the latest: the
  /// relative error of the comparisons above rounding noise, or when there are
  /// none, that the gradient was below it, and how large it was; the checks
  /// that failed, the replay's mismatches, and whether a second look confirmed it.
  static func result(of report: AuditReport) -> AuditResult {
    let audit = report.audit
    return AuditResult(
      workerID: report.workerID, sequence: report.sequence, passed: report.passed,
      maximumRelativeError: finite(
        audit.map { $0.isConclusive ? $0.maximumRelativeError : $0.maximumRawRelativeError } ?? 0),
      conclusive: report.isConclusive || (audit == nil && report.replay?.passed == true),
      gradientMagnitude: finite(audit?.gradientMagnitude ?? 0),
      appliedAtVersion: report.appliedAtVersion, failedChecks: report.failedChecks,
      replayMismatches: UInt64(report.replayMismatches), confirmed: report.confirmed)
  }
}
