import WireProtocol

/// What the coordinator knows of each worker's audits: its pushes (the highest sequence
/// number seen, in a record or in the server's status), the audits made of them, and the
/// last audited push; and the warning when a worker has gone unaudited for too many
/// pushes. Pure: the coordinator hands it records and statuses.
public struct AuditCoverage: Equatable, Sendable {
  /// One worker's coverage.
  public struct Worker: Equatable, Sendable {
    /// The highest push sequence number seen.
    public var pushes: UInt64
    /// Pushes made before the coordinator first saw the worker (not covered).
    public var pushesBefore: UInt64
    /// Audits made of its pushes.
    public var audits = 0
    /// Its last audited push (nil: none yet).
    public var lastAudited: UInt64?
    /// Whether it was warned about since its last audit.
    public var warned = false

    /// The pushes seen since the coordinator started watching it.
    public var pushesWatched: UInt64 { pushes - min(pushes, pushesBefore) }

    /// Audits per push watched (0 before any push).
    public var auditedRate: Double {
      pushesWatched == 0 ? 0 : Double(audits) / Double(pushesWatched)
    }

    /// Pushes since its last audit, or since it was first seen when none was audited.
    public var pushesSinceAudit: UInt64 {
      let since = lastAudited ?? pushesBefore
      return pushes - min(pushes, since)
    }
  }

  /// The workers seen, by id.
  public private(set) var workers: [UInt32: Worker] = [:]

  /// No worker seen yet.
  public init() {}

  /// Counts the audit of push `sequence` of `workerID`.
  public mutating func audited(workerID: UInt32, sequence: UInt64) {
    var worker =
      workers[workerID] ?? Worker(pushes: sequence, pushesBefore: sequence - min(sequence, 1))
    worker.pushes = max(worker.pushes, sequence)
    worker.audits += 1
    worker.lastAudited = max(worker.lastAudited ?? 0, sequence)
    worker.warned = false
    workers[workerID] = worker
  }

  /// Takes each worker's last applied push from a server status.
  public mutating func observe(_ status: ServerStatus) {
    for entry in status.workers {
      if workers[entry.workerID] == nil {
        workers[entry.workerID] = Worker(
          pushes: entry.lastSequence, pushesBefore: entry.lastSequence)
      }
      workers[entry.workerID]!.pushes = max(workers[entry.workerID]!.pushes, entry.lastSequence)
    }
  }

  /// The pushes after which a worker without an audit is warned about: three times the
  /// pushes within which a faulty worker is flagged with probability 0.999 when pushes are
  /// sampled with `probability` (missing one is then a one-in-a-billion chance), or three
  /// periods of `every` versions (a worker makes at most `every` pushes in a period); the
  /// smaller. nil when neither audits anything (`every` nil or `noPeriods`: no periods).
  public static func warningLimit(probability: Double, every: UInt64?) -> UInt64? {
    let sampled = AuditBudget.detectionPushes(probability: probability).map { 3 * UInt64($0) }
    let periodic = every.flatMap { every in
      every == 0 || every == AuditSubscription.noPeriods
        ? nil : every.multipliedReportingOverflow(by: 3).overflow ? .max : 3 * every
    }
    switch (sampled, periodic) {
    case (let a?, let b?): return min(a, b)
    case (let a?, nil): return a
    case (nil, let b?): return b
    case (nil, nil): return nil
    }
  }

  /// Takes the workers' push counts from `status` and returns the warning texts
  /// of workers gone unaudited for more than `warningLimit` pushes at
  /// `probability` and period `every` (`AuditSubscription.noPeriods`: none).
  public mutating func observe(_ status: ServerStatus, probability: Double, every: UInt64)
    -> [String]
  {
    observe(status)
    guard
      let limit = Self.warningLimit(
        probability: probability, every: every == AuditSubscription.noPeriods ? nil : every)
    else { return [] }
    return newWarnings(limit: limit).map(\.text)
  }

  /// Workers with more than `limit` pushes since their last audit (or since they were first
  /// seen) not warned about yet, each with a line saying so; each is warned about once until
  /// it is audited again.
  public mutating func newWarnings(limit: UInt64) -> [(workerID: UInt32, text: String)] {
    var warnings: [(workerID: UInt32, text: String)] = []
    for id in workers.keys.sorted() where !workers[id]!.warned {
      let worker = workers[id]!
      guard worker.pushesSinceAudit > limit else { continue }
      workers[id]!.warned = true
      let last = worker.lastAudited.map { "since its push \($0)" } ?? "since it was first seen"
      warnings.append(
        (
          id,
          "worker \(id) has made \(worker.pushesSinceAudit) pushes \(last) without an audit (more than \(limit)): records may be dropped or computed at weights no longer kept, or the coordinator falls behind"
        ))
    }
    return warnings
  }

  /// Per-worker coverage as a JSON array of objects: `worker`, `pushes`, `pushes_watched`,
  /// `audits`, `audited_rate`, `last_audited` (null if none), `pushes_since_audit`.
  public var json: String {
    let entries = workers.keys.sorted().map { id in
      let worker = workers[id]!
      return "{\"worker\":\(id),\"pushes\":\(worker.pushes),"
        + "\"pushes_watched\":\(worker.pushesWatched),\"audits\":\(worker.audits),"
        + "\"audited_rate\":\(JSON.number(worker.auditedRate)),"
        + "\"last_audited\":\(worker.lastAudited.map(String.init) ?? "null"),"
        + "\"pushes_since_audit\":\(worker.pushesSinceAudit)}"
    }
    return "[\(entries.joined(separator: ","))]"
  }
}
