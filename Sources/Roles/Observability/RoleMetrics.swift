import Metrics
import SystemCalls
import WireProtocol

/// The server's metrics (swift-metrics; a no-op until a backend is bootstrapped).
public final class ServerMetrics {
  private let version = Gauge(label: "pstrain_version")
  private let liveWorkers = Gauge(label: "pstrain_workers_live")
  private let applied = Counter(label: "pstrain_gradients_applied_total")
  private let samplesApplied = Counter(label: "pstrain_samples_applied_total")
  private let staleness = Recorder(label: "pstrain_gradient_staleness_versions")
  // Made at the first evaluation (and the accuracy's at the first of a classifier), so
  // that a server with none exports no figure, rather than a 0 that was never measured.
  private var testLoss: Gauge?
  private var testAccuracy: Gauge?
  private var testAUC: Gauge?
  // Made when the server holds a sparse model.
  private var keyedRows: Gauge?
  private var keyedBytesAllocated: Gauge?
  private var sparseBytes: (received: Counter, sent: Counter)?
  private var lastKeyed: KeyedTableStatus?
  private var lastEvaluation: EvaluationReport?
  // One series per reason from the start, each at 0 until its first refusal, so that a
  // query for a reason's rate has data before anything was refused.
  private let rejected = Dictionary(
    uniqueKeysWithValues: ErrorCode.allCases.map {
      (
        $0,
        Counter(label: "pstrain_pushes_rejected_total", dimensions: [("reason", $0.description)])
      )
    })
  private var lastApplied: UInt64 = 0
  private var lastRowsApplied: UInt64 = 0
  private var lastRejected: [ErrorCode: UInt64] = [:]
  // Made once the server quarantines (`--quarantine`), so a server without it exports none.
  private var quarantined: Gauge?
  private var rollbacks: Counter?
  private var versionsRolledBack: Counter?
  private var lastQuarantine = QuarantineReport.disabled

  /// Metrics for one server.
  public init() {}

  /// Brings the metrics up to date with `server` (called by the server loop),
  /// with the staleness samples the loop drained from it since the last call.
  public func update(from server: ParameterServer, staleness samples: [UInt64]) {
    version.record(Double(server.version))
    liveWorkers.record(Double(server.joinedWorkers.count))
    if server.gradientsApplied > lastApplied {
      applied.increment(by: Int64(server.gradientsApplied - lastApplied))
      lastApplied = server.gradientsApplied
    }
    if server.rowsApplied > lastRowsApplied {
      samplesApplied.increment(by: Int64(server.rowsApplied - lastRowsApplied))
      lastRowsApplied = server.rowsApplied
    }
    for (code, count) in server.rejectedByReason where count > lastRejected[code, default: 0] {
      rejected[code]?.increment(by: Int64(count - lastRejected[code, default: 0]))
      lastRejected[code] = count
    }
    for sample in samples { staleness.record(Int64(sample)) }
    updateQuarantine(server.quarantine)
    // The coordinator's latest evaluation on held-out data, once per report.
    if let evaluation = server.lastEvaluation, evaluation != lastEvaluation {
      lastEvaluation = evaluation
      if testLoss == nil { testLoss = Gauge(label: "pstrain_test_loss") }
      testLoss?.record(evaluation.loss)
      if let accuracy = evaluation.accuracy {
        if testAccuracy == nil { testAccuracy = Gauge(label: "pstrain_test_accuracy") }
        testAccuracy?.record(accuracy)
      }
      if let auc = evaluation.auc {
        if testAUC == nil { testAUC = Gauge(label: "pstrain_test_auc") }
        testAUC?.record(auc)
      }
    }
    if let keyed = server.keyed { updateKeyed(keyed.report) }
  }

  /// `pstrain_keyed_rows`, `pstrain_keyed_bytes_allocated` and
  /// `pstrain_sparse_bytes_total{direction}`, for a sparse model's table.
  private func updateKeyed(_ report: KeyedTableStatus) {
    if keyedRows == nil {
      keyedRows = Gauge(label: "pstrain_keyed_rows")
      keyedBytesAllocated = Gauge(label: "pstrain_keyed_bytes_allocated")
      sparseBytes = (
        Counter(label: "pstrain_sparse_bytes_total", dimensions: [("direction", "received")]),
        Counter(label: "pstrain_sparse_bytes_total", dimensions: [("direction", "sent")])
      )
    }
    keyedRows?.record(Double(report.rowsTouched))
    keyedBytesAllocated?.record(Double(report.bytesAllocated))
    let last = lastKeyed
    if report.bytesReceived > last?.bytesReceived ?? 0 {
      sparseBytes?.received.increment(by: Int64(report.bytesReceived - (last?.bytesReceived ?? 0)))
    }
    if report.bytesSent > last?.bytesSent ?? 0 {
      sparseBytes?.sent.increment(by: Int64(report.bytesSent - (last?.bytesSent ?? 0)))
    }
    lastKeyed = report
  }

  /// `pstrain_quarantined_workers`, `pstrain_rollbacks_total` and
  /// `pstrain_versions_rolled_back_total`, when the server quarantines.
  private func updateQuarantine(_ report: QuarantineReport) {
    guard report.enabled else { return }
    if quarantined == nil {
      quarantined = Gauge(label: "pstrain_quarantined_workers")
      rollbacks = Counter(label: "pstrain_rollbacks_total")
      versionsRolledBack = Counter(label: "pstrain_versions_rolled_back_total")
    }
    quarantined?.record(Double(report.workers.count))
    if report.rollbacks > lastQuarantine.rollbacks {
      rollbacks?.increment(by: Int64(report.rollbacks - lastQuarantine.rollbacks))
    }
    if report.versionsRolledBack > lastQuarantine.versionsRolledBack {
      versionsRolledBack?.increment(
        by: Int64(report.versionsRolledBack - lastQuarantine.versionsRolledBack))
    }
    lastQuarantine = report
  }
}

/// A worker's metrics: its pushes, their round-trip latency, and its training loss.
public final class WorkerMetrics {
  private let roundTrip = Timer(label: "pstrain_push_round_trip_seconds")
  private let pushes = Counter(label: "pstrain_pushes_total")
  /// `pstrain_train_loss`.
  let trainLoss = TrainLossGauge()
  private var sentAt: [UInt64: UInt64] = [:]

  /// Metrics for one worker.
  public init() {}

  /// Notes that `message` was sent now (pushes only; a resend keeps the first time).
  func sent(_ message: WireMessage) {
    let sequence: UInt64
    let count: Int
    switch message {
    case .push(let push): (sequence, count) = (push.sequence, 1)
    case .pushes(let frame): (sequence, count) = (frame[frame.count - 1].sequence, frame.count)
    case .sparsePush(let push): (sequence, count) = (push.sequence, 1)
    default: return
    }
    guard sentAt[sequence] == nil else { return }
    sentAt[sequence] = MonotonicClock.nanoseconds()
    pushes.increment(by: count)
  }

  /// Notes that `message` arrived now.
  func received(_ message: WireMessage) {
    let acknowledged: UInt64
    switch message {
    case .weights(let reply): acknowledged = reply.acknowledgedSequence
    case .sparseAck(let ack): acknowledged = ack.sequence
    default: return
    }
    guard let start = sentAt.removeValue(forKey: acknowledged) else { return }
    roundTrip.recordNanoseconds(Int64(MonotonicClock.nanoseconds() - start))
    if sentAt.count > 1024 { sentAt.removeAll() }  // answers that never came
  }
}

/// `pstrain_train_loss`, a worker's (dense or sparse) recent training loss.
final class TrainLossGauge {
  // Made at the first batch, so that a worker that computed none exports no loss.
  private var gauge: Gauge?

  /// Sets the gauge to `meanLoss`, the mean loss of the batches computed since the last
  /// call (nil when there were none: the gauge keeps its value).
  func record(_ meanLoss: Double?) {
    guard let meanLoss else { return }
    if gauge == nil { gauge = Gauge(label: "pstrain_train_loss") }
    gauge?.record(meanLoss)
  }
}

/// The coordinator's metrics: the audits and their errors.
public final class CoordinatorMetrics {
  private let lastError = Gauge(label: "pstrain_audit_last_relative_error")
  private let maximumError = Gauge(label: "pstrain_audit_max_relative_error")
  private let passed = Counter(label: "pstrain_audits_total", dimensions: [("result", "passed")])
  private let failed = Counter(label: "pstrain_audits_total", dimensions: [("result", "failed")])
  private var maximum = 0.0

  /// Metrics for one coordinator.
  public init() {}

  func record(_ report: AuditReport) {
    if let audit = report.audit {
      let error = audit.maximumRawRelativeError
      lastError.record(error)
      maximum = max(maximum, error)
      maximumError.record(maximum)
    }
    (report.passed ? passed : failed).increment()
  }
}
