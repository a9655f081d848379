import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// The coordinator: subscribes to the server's applied gradients every N
/// versions and, under an `AuditBudget`, to a sample of every worker's pushes,
/// audits each against finite differences, and reports; it keeps each worker's
/// `AuditCoverage` and warns when one goes unaudited for too long. With held-out
/// data it also evaluates the server's weights on it every M versions and at the
/// end, a slice at a time between messages so that audits are not held up, and
/// reports each evaluation to the server. The protocol is `CoordinatorSession`;
/// this loop moves its messages.
public final class CoordinatorLoop: AuditingCoordinator {
  private let connection: any ServerLink
  /// Audit every this many versions (`AuditSubscription.noPeriods`: sampled pushes only).
  public let every: UInt64
  private let tolerance: Double
  /// The checks made of every record.
  public let checks: AuditChecks
  /// How replays compare.
  public let replayMode: ReplayMode
  /// The data the workers read: audit records name rows of it.
  private let dataset: Dataset
  /// Totals so far.
  public private(set) var tally = AuditTally()
  /// The sampling probability and checks, from the audits' measured costs.
  public private(set) var budget: AuditBudget
  /// The seed of the sampled audits' draw.
  public let seed: UInt64
  /// Each worker's pushes and audits.
  public private(set) var coverage = AuditCoverage()
  /// Compute seconds (thread CPU time) spent auditing, gradient timings included.
  public private(set) var auditSeconds = 0.0
  /// The warnings given (workers unaudited for too long).
  public private(set) var warnings: [String] = []
  /// The lowest sampling probability sent so far: a worker's gap between audits
  /// may span a time it was in force, so warnings are judged by it.
  private var lowestProbability: Double?
  /// How often the coordinator asks for a status for the workers' push counts.
  public static let coveragePollMilliseconds: UInt64 = 1000
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
  /// evaluates the server's weights on that data as its schedule says. With a
  /// `budget` of more than 0 it also samples pushes with the budget's probability
  /// under `seed` (`every` `AuditSubscription.noPeriods`: sampled pushes only).
  public init(
    connection: any ServerLink, every: UInt64, tolerance: Double, dataset: Dataset,
    checks: AuditChecks = .all, replayMode: ReplayMode = .exact,
    readiness: Readiness? = nil, heldOut: HeldOutData? = nil,
    budget: AuditBudget = AuditBudget(fraction: 0), seed: UInt64 = 0
  ) {
    self.checks = checks
    self.replayMode = replayMode
    self.budget = budget
    self.seed = seed
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
  /// `sampling` sees the sampling probability when it changes meaningfully, and
  /// `warned` each warning about a worker unaudited for too long.
  public func run(
    timeoutMilliseconds: Int? = nil, stopWhen: (AuditTally) -> Bool = { _ in false },
    shouldStop: () -> Bool, subscribed: () -> Void = {},
    evaluated: (HeldOutEvaluation) -> Void = { _ in }, sampling: (AuditBudget) -> Void = { _ in },
    warned: (String) -> Void = { _ in }, report: (AuditReport) -> Void
  ) throws(RoleError) {
    var session = CoordinatorSession(
      every: every, evaluation: heldOut.map { EvaluationSchedule(every: $0.every) },
      coveragePollMilliseconds: Self.coveragePollMilliseconds)
    session.seed = seed
    var announced = samplingProbability
    let start = MonotonicClock.milliseconds()
    while true {
      let now = MonotonicClock.milliseconds()
      let timedOut = timeoutMilliseconds.map { now - start >= UInt64($0) } ?? false
      let stop = shouldStop() || stopWhen(tally) || timedOut
      session.probability = samplingProbability
      lowestProbability = min(lowestProbability ?? samplingProbability, samplingProbability)
      if AuditBudget.changedMeaningfully(from: announced, to: samplingProbability) {
        announced = samplingProbability
        sampling(budget)
      }
      for message in session.messagesToSend(now: now, stop: stop) { try connection.send(message) }
      if session.isFinished { return }
      // While an evaluation is under way, only look for messages between its slices.
      if let message = try connection.receive(
        timeoutMilliseconds: running == nil && ready == nil
          ? CoordinatorSession.pollMilliseconds : 0,
        graceAfterStopMilliseconds: nil)
      {
        switch try session.receive(message) {
        case .audit(let record): try auditMeasured(record, report: report)
        case .auditSparse:
          throw .unexpectedReply(expected: "dense audit records", got: "a sparse audit record")
        case .confirmed:
          readiness?.markReady()
          subscribed()
        case .renewed: readiness?.markReady()
        case .evaluate(let status, let final):
          observeCoverage(status, warned: warned)
          try startEvaluation(of: status, final: final)
        case .coverage(let status): observeCoverage(status, warned: warned)
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

  /// Audits `record`, measuring its costs for the budget and counting it for
  /// the coverage. With a replay, every sampled push is replayed and the budget
  /// says which also get finite differences; an audit that only replays costs
  /// `a`, and one with both `a` plus the finite differences. Now and then one
  /// gradient on the record's rows is timed as a worker computes it, for `r`.
  private func auditMeasured(_ record: AuditRecord, report: (AuditReport) -> Void)
    throws(RoleError)
  {
    if budget.wantsGradientTiming, let seconds = gradientSeconds(record) {
      budget.recordGradient(seconds: seconds)
      auditSeconds += seconds
    }
    let checks = budget.checks(of: self.checks)
    let start = ThreadCPUClock.nanoseconds()
    try audit(record, checks: checks, report: report)
    let seconds = Double(ThreadCPUClock.nanoseconds() &- start) / 1e9
    budget.account(checks: checks, seconds: seconds)
    auditSeconds += seconds
    coverage.audited(workerID: record.workerID, sequence: record.sequence)
  }

  /// A workspace kept for timing gradients, as a worker keeps one: its model's
  /// name, its capacity, and the objective.
  private var timing:
    (
      model: String, capacity: Int, objective: Objective<AnyDifferentiableModel>,
      workspace: BatchWorkspace, gradient: [Double]
    )?

  /// Compute seconds of one gradient on `record`'s rows at its weights, in a
  /// workspace kept from one timing to the next (what the push cost its
  /// worker); nil when its model or rows are not the coordinator's.
  private func gradientSeconds(_ record: AuditRecord) -> Double? {
    guard !record.rows.isEmpty, record.rows.allSatisfy({ $0 < dataset.count }) else { return nil }
    if timing == nil || timing!.model != record.modelName
      || timing!.capacity < record.rows.count
      || timing!.gradient.count != record.weights.values.count
    {
      guard
        let model = try? ModelCatalog.model(
          for: ModelDescriptor(name: record.modelName, layout: record.weights.layout)),
        model.parameterCount == record.weights.values.count
      else { return nil }
      timing = (
        record.modelName, record.rows.count, Objective(model: model),
        model.makeWorkspace(batchCapacity: record.rows.count),
        [Double](repeating: 0, count: model.parameterCount)
      )
    }
    timing!.workspace.load(rows: record.rows, of: dataset)
    let start = ThreadCPUClock.nanoseconds()
    _ = timing!.objective.gradient(
      weights: record.weights.values, workspace: timing!.workspace, into: &timing!.gradient)
    return Double(ThreadCPUClock.nanoseconds() &- start) / 1e9
  }

  /// Takes the workers' push counts from `status` and warns about each worker
  /// gone unaudited for more than three times `detectionPushes` (at the lowest
  /// probability sent so far).
  private func observeCoverage(_ status: ServerStatus, warned: (String) -> Void) {
    for warning in coverage.observe(
      status, probability: lowestProbability ?? samplingProbability, every: every)
    {
      warnings.append(warning)
      warned(warning)
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

  private func audit(
    _ record: AuditRecord, checks: AuditChecks, report: (AuditReport) -> Void
  ) throws(RoleError) {
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
