import SystemCalls
import TrainingMath
import WireProtocol

/// The coordinator of a sparse model: the dense coordinator's protocol
/// (`CoordinatorSession`: subscription, renewals, drain, and when to evaluate by
/// `EvaluationSchedule`) with sparse work. It joins the server shards' parts of
/// each sampled push's audit record (`SparseAuditJoiner`), replays the push at
/// the rows it was served (bit for bit) and checks it against finite
/// differences, and reports the verdict; with held-out data it pulls the rows
/// of every key the test rows touch (read-only, uncached pulls) when an
/// evaluation is due, and reports the test loss, accuracy and ROC AUC.
public final class SparseCoordinatorLoop: AuditingCoordinator {
  /// The id the coordinator's read-only pulls carry (it never joins).
  public static let pullerID = UInt32.max
  /// How long an evaluation's pulls wait for their rows before they are sent again.
  public static let pullRetryMilliseconds: UInt64 = 2000
  /// Times an evaluation's pulls are sent before it is given up.
  public static let pullAttempts = 3

  private let connection: any ServerLink
  private let model: SparseModelSpec
  /// Audit every this many versions (`AuditSubscription.noPeriods`: sampled pushes only).
  public let every: UInt64
  private let tolerance: Double
  /// The checks made of every record.
  public let checks: AuditChecks
  /// The data the workers read: audit records name rows of it.
  private let dataset: SparseDataset
  private let identity: DatasetIdentity
  /// Held-out rows as one batch, and how often to evaluate them (nil: no evaluations).
  private let heldOut: (data: SparseDataset, batch: SparseBatch, every: UInt64)?
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
  /// Audit records' parts waiting for the other shards' parts.
  public private(set) var joiner = SparseAuditJoiner()
  private var lowestProbability: Double?
  private let metrics = CoordinatorMetrics()
  private let readiness: Readiness?
  private var lastEvaluation: SparseHeldOutEvaluation?
  /// The evaluation whose rows are being pulled.
  private var pulling: SparseTestPull?
  private var nextPullSequence: UInt64 = 1
  private var gradient: [Double] = []

  /// A coordinator of `model` auditing every `every` versions (and a sample under
  /// `budget` drawn with `seed`) by `checks`, finite differences with `tolerance`,
  /// reading the audited rows from `dataset`; with `testData`, evaluating every
  /// `evalEvery` versions and at the end.
  public init(
    connection: any ServerLink, model: SparseModelSpec, every: UInt64, tolerance: Double,
    dataset: SparseDataset, checks: AuditChecks = .all, readiness: Readiness? = nil,
    testData: SparseDataset? = nil, evalEvery: UInt64 = 10,
    budget: AuditBudget = AuditBudget(fraction: 0), seed: UInt64 = 0
  ) {
    self.connection = connection
    self.model = model
    self.every = every
    self.tolerance = tolerance
    self.dataset = dataset
    identity = DatasetIdentity(rows: UInt64(dataset.count), fingerprint: dataset.fingerprint)
    self.checks = checks
    self.readiness = readiness
    heldOut = testData.map {
      ($0, SparseBatch(rows: Array(0..<$0.count), data: $0, model: model), evalEvery)
    }
    self.budget = budget
    self.seed = seed
  }

  /// Audits and evaluates until `shouldStop` (or `stopWhen`, or the timeout),
  /// then ends the subscription as the dense coordinator does; the callbacks are
  /// its (`CoordinatorLoop.run`), `evaluated` with the sparse evaluation.
  public func run(
    timeoutMilliseconds: Int? = nil, stopWhen: (AuditTally) -> Bool = { _ in false },
    shouldStop: () -> Bool, subscribed: () -> Void = {},
    evaluated: (SparseHeldOutEvaluation) -> Void = { _ in },
    sampling: (AuditBudget) -> Void = { _ in }, warned: (String) -> Void = { _ in },
    report: (AuditReport) -> Void
  ) throws(RoleError) {
    var session = CoordinatorSession(
      every: every, evaluation: heldOut.map { EvaluationSchedule(every: $0.every) },
      coveragePollMilliseconds: CoordinatorLoop.coveragePollMilliseconds)
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
      if var pull = pulling, now &- pull.sentAt >= Self.pullRetryMilliseconds {
        if pull.attempts >= Self.pullAttempts {
          // No rows came (the server is gone): give the evaluation up, so the run can end.
          pulling = nil
          session.evaluated(version: pull.statusVersion)
        } else {
          pull.sentAt = now
          pull.attempts += 1
          pulling = pull
          for message in pull.missing() { try connection.send(message) }
        }
      }
      if let message = try connection.receive(
        timeoutMilliseconds: CoordinatorSession.pollMilliseconds, graceAfterStopMilliseconds: nil)
      {
        if case .sparseRows(let rows) = message {
          if let finished = try accept(rows) {
            session.evaluated(version: finished.version)
            try connection.send(.evaluation(finished.report))
            evaluated(finished)
          }
        } else {
          switch try session.receive(message) {
          case .auditSparse(let part): try take(part, report: report)
          case .audit:
            throw .unexpectedReply(expected: "sparse audit records", got: "a dense audit record")
          case .confirmed:
            readiness?.markReady()
            subscribed()
          case .renewed: readiness?.markReady()
          case .evaluate(let status, let final):
            observeCoverage(status, warned: warned)
            if let finished = try startEvaluation(of: status, final: final, now: now) {
              session.evaluated(version: finished.version)
              try connection.send(.evaluation(finished.report))
              evaluated(finished)
            }
          case .coverage(let status): observeCoverage(status, warned: warned)
          case .none: break
          }
        }
      }
      if session.isFinished { return }
    }
  }

  // MARK: - Evaluations

  /// Sends the pulls of the test keys for an evaluation of `status`'s version,
  /// or returns the last evaluation again when it is final and of that version.
  private func startEvaluation(of status: ServerStatus, final: Bool, now: UInt64)
    throws(RoleError) -> SparseHeldOutEvaluation?
  {
    guard let heldOut else { return nil }
    if final, var last = lastEvaluation, last.version == status.version {
      last.base.isFinal = true
      lastEvaluation = last
      return last
    }
    let pull = SparseTestPull(
      keys: heldOut.batch.keys, width: model.rowWidth, firstSequence: nextPullSequence,
      statusVersion: status.version, isFinal: final, now: now)
    nextPullSequence += UInt64(pull.chunks.count)
    pulling = pull
    for message in pull.missing() { try connection.send(message) }
    return nil
  }

  /// Takes rows for the evaluation's pulls; evaluates once every chunk is in.
  private func accept(_ rows: SparseRows) throws(RoleError) -> SparseHeldOutEvaluation? {
    guard var pull = pulling, let heldOut, pull.accept(rows) else { return nil }
    pulling = pull
    guard let (values, version) = pull.joined else { return nil }
    pulling = nil
    let evaluation = SparseHeldOutEvaluation(
      model: model, test: heldOut.data, keys: heldOut.batch.keys, values: values,
      version: version, isFinal: pull.isFinal)
    lastEvaluation = evaluation
    return evaluation
  }

  // MARK: - Audits

  /// Joins `part` with the other shards' parts of its push; audits the whole.
  private func take(_ part: SparseAuditRecord, report: (AuditReport) -> Void) throws(RoleError) {
    guard part.dataset == identity else {
      throw .invalidArgument(
        "the coordinator reads \(identity), the workers read \(part.dataset): give the coordinator the workers' data file (--data)"
      )
    }
    let expected: Int
    if part.serverShard.count > 1 {
      let ownership = KeyOwnership(shards: part.serverShard.count)
      let rows = part.rows.filter { (0..<dataset.count).contains($0) }
      let keys = SparseBatch(rows: rows, data: dataset, model: model).keys
      expected = Set(keys.map(ownership.owner(of:))).count
    } else {
      expected = 1
    }
    guard let record = joiner.accept(part, expectedShards: expected) else { return }
    try auditMeasured(record, report: report)
  }

  /// Audits `record` as `CoordinatorLoop` does, measuring its costs for the budget.
  private func auditMeasured(_ record: SparseAuditRecord, report: (AuditReport) -> Void)
    throws(RoleError)
  {
    if budget.wantsGradientTiming, let seconds = gradientSeconds(record) {
      budget.recordGradient(seconds: seconds)
      auditSeconds += seconds
    }
    let checks = budget.checks(of: self.checks)
    let start = ThreadCPUClock.nanoseconds()
    let result = Self.audit(
      record, model: model, dataset: dataset, checks: checks, tolerance: tolerance)
    tally.add(result)
    metrics.record(result)
    try connection.send(.auditResult(CoordinatorLoop.result(of: result)))
    report(result)
    let seconds = Double(ThreadCPUClock.nanoseconds() &- start) / 1e9
    budget.account(checks: checks, seconds: seconds)
    auditSeconds += seconds
    coverage.audited(workerID: record.workerID, sequence: record.sequence)
  }

  /// Compute seconds of one gradient on `record`'s rows at its served rows.
  private func gradientSeconds(_ record: SparseAuditRecord) -> Double? {
    guard !record.rows.isEmpty, record.rows.allSatisfy({ (0..<dataset.count).contains($0) })
    else { return nil }
    let batch = SparseBatch(rows: record.rows, data: dataset, model: model)
    guard batch.keys == record.keys else { return nil }
    let start = ThreadCPUClock.nanoseconds()
    _ = model.lossAndGradient(of: batch, data: dataset, values: record.values, gradient: &gradient)
    return Double(ThreadCPUClock.nanoseconds() &- start) / 1e9
  }

  /// The audit of one whole sparse push by `checks`: the replay at the served
  /// rows (bit for bit) and finite differences over every touched coordinate,
  /// seeded by the worker and sequence; a failure gets a second look. A push
  /// that does not fit its rows' batch (other keys or sizes) fails its replay
  /// on every coordinate.
  public static func audit(
    _ record: SparseAuditRecord, model: SparseModelSpec, dataset: SparseDataset,
    checks: AuditChecks, tolerance: Double
  ) -> AuditReport {
    let auditor = SparseGradientAuditor(model: model, tolerance: tolerance)
    let replayer = SparseGradientReplay(model: model)
    let seed = (UInt64(record.workerID) << 40) ^ record.sequence
    func differences(seed: UInt64) -> GradientAudit? {
      try? auditor.audit(
        data: dataset, rows: record.rows, keys: record.keys, values: record.values,
        gradient: record.gradients, seed: seed)
    }
    func replayed() -> ReplayComparison {
      do {
        return try replayer.replay(
          data: dataset, rows: record.rows, keys: record.keys, values: record.values,
          gradient: record.gradients)
      } catch {
        let width = max(1, record.values.count / max(1, record.keys.count))
        return ReplayComparison(
          pushed: record.gradients,
          replayed: [Double](repeating: .nan, count: record.gradients.count), allowed: nil,
          mode: .exact
        ) { ("key \(record.keys[min($0 / width, record.keys.count - 1)]) (\(error))", $0 % width) }
      }
    }
    let fits =
      (try? SparseBatch(
        pushedRows: record.rows, keys: record.keys, values: record.values,
        gradient: record.gradients, data: dataset, model: model)) != nil
    var report = AuditReport(
      workerID: record.workerID, sequence: record.sequence,
      computedAtVersion: record.computedAtVersion, appliedAtVersion: record.appliedAtVersion,
      sampleRows: record.rows,
      audit: fits && checks.contains(.finiteDifferences) ? differences(seed: seed) : nil,
      replay: checks.contains(.replay) || !fits ? replayed() : nil)
    let failed = report.failedChecks
    if !failed.isEmpty {
      var generator = SplitMix64(seed: seed ^ 0x7365_636F_6E64_4C6B)  // "secondLk"
      report.secondLook = AuditReport.SecondLook(
        audit: failed.contains(.finiteDifferences) ? differences(seed: generator.next()) : nil,
        replay: failed.contains(.replay) ? replayed() : nil)
    }
    return report
  }

  /// Takes the workers' push counts from `status` and warns about workers gone unaudited.
  private func observeCoverage(_ status: ServerStatus, warned: (String) -> Void) {
    for warning in coverage.observe(
      status, probability: lowestProbability ?? samplingProbability, every: every)
    {
      warnings.append(warning)
      warned(warning)
    }
  }
}

/// The pulls of an evaluation's test keys: chunks of at most
/// `SparseLimits.maximumKeys` keys, each a read-only pull with its own sequence
/// number, and their rows joined back in key order once every chunk is in.
struct SparseTestPull {
  let keys: [UInt64]
  let width: Int
  /// Each chunk's positions in `keys`.
  let chunks: [Range<Int>]
  let firstSequence: UInt64
  /// The version of the status the evaluation is of.
  let statusVersion: UInt64
  let isFinal: Bool
  /// When the missing pulls were last sent, and how many times they were.
  var sentAt: UInt64
  var attempts = 1
  private var received: [Int: SparseRows] = [:]

  init(
    keys: [UInt64], width: Int, firstSequence: UInt64, statusVersion: UInt64, isFinal: Bool,
    now: UInt64, chunkKeys: Int = SparseLimits.maximumKeys
  ) {
    self.keys = keys
    self.width = width
    chunks = stride(from: 0, to: keys.count, by: chunkKeys).map {
      $0..<min(keys.count, $0 + chunkKeys)
    }
    self.firstSequence = firstSequence
    self.statusVersion = statusVersion
    self.isFinal = isFinal
    sentAt = now
  }

  /// The pulls whose rows have not come.
  func missing() -> [WireMessage] {
    chunks.indices.filter { received[$0] == nil }.map { index in
      .sparsePull(
        SparsePull(
          workerID: SparseCoordinatorLoop.pullerID, sequence: firstSequence + UInt64(index),
          keys: .keys(Array(keys[chunks[index]]), cacheAs: 0)))
    }
  }

  /// Takes the rows of one chunk; false when they answer no pull of this evaluation.
  mutating func accept(_ rows: SparseRows) -> Bool {
    guard rows.sequence >= firstSequence, rows.sequence - firstSequence < chunks.count else {
      return false
    }
    let index = Int(rows.sequence - firstSequence)
    guard rows.values.count == chunks[index].count * width else { return false }
    received[index] = rows
    return true
  }

  /// Every chunk's rows in key order, and the oldest version they were read at;
  /// nil while some are missing.
  var joined: (values: [Double], version: UInt64)? {
    guard received.count == chunks.count else { return nil }
    let values = chunks.indices.flatMap { received[$0]!.values }
    return (values, received.values.map(\.version).min() ?? 0)
  }
}
