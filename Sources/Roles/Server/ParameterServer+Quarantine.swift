import TrainingMath
import WireProtocol

/// Quarantine and rollback (`--quarantine`): a worker whose failed audit the
/// coordinator confirmed is dropped like a leaving worker and refused from
/// then on, and in async mode the server returns to the newest snapshot before
/// the worker's first push after its last passed audit, at a new version.
extension ParameterServer {
  /// The quarantine as `status` reports it.
  public var quarantine: QuarantineReport {
    quarantineList.report(enabled: configuration.quarantine != nil)
  }

  /// The current state, as a rollback would restore it.
  var snapshot: RollbackSnapshots.Snapshot {
    RollbackSnapshots.Snapshot(version: version, store: store, optimizer: optimizer, work: work)
  }

  /// Keeps the first snapshot, when the server quarantines in async mode (the
  /// only mode it rolls back in: a sync step's barrier is keyed by version).
  func startSnapshots() {
    guard let policy = configuration.quarantine, configuration.mode == .async else { return }
    snapshots = RollbackSnapshots(
      every: policy.snapshotEvery, byteBudget: policy.snapshotByteBudget, initial: snapshot)
  }

  /// The refusal of `message` when it comes from a quarantined worker id, else nil.
  func refuseQuarantined(_ message: WireMessage, from peer: PeerID) -> [Outgoing]? {
    let worker: UInt32
    switch message {
    case .join(let join): worker = join.workerID
    case .push(let push): worker = push.workerID
    case .pushes(let pushes):
      guard let first = pushes.first else { return nil }
      worker = first.workerID
    case .leave(let id), .heartbeat(let id), .leaseRequest(let id): worker = id
    case .sparsePull(let pull): worker = pull.workerID
    case .sparsePush(let push): worker = push.workerID
    default: return nil
    }
    guard let record = quarantineList.record(of: worker) else { return nil }
    return refuse(peer, .quarantined, QuarantineList.refusal(record))
  }

  /// Acts on an audit verdict, when quarantining: a pass vouches for the
  /// worker's pushes up to the audited one; a confirmed failure quarantines
  /// the worker (once). Returns what this releases (sync steps that no
  /// longer wait for the worker).
  func takeVerdict(_ result: AuditResult) -> [Outgoing] {
    guard configuration.quarantine != nil, !quarantineList.contains(result.workerID) else {
      return []
    }
    if result.passed {
      if let through = appliedVersion(of: result) {
        snapshots?.vouched(for: result.workerID, through: through)
      }
      return []
    }
    guard result.confirmed else { return [] }
    return quarantine(result)
  }

  /// The version the audited push's application produced on this server: as
  /// remembered when its record was sent, or, on a single server, as the
  /// verdict says (with server shards each shard's version differs).
  private func appliedVersion(of result: AuditResult) -> UInt64? {
    if let known = quarantineList.version(of: result.workerID, sequence: result.sequence) {
      return known
    }
    guard configuration.shard.count == 1, result.appliedAtVersion > 0 else { return nil }
    return result.appliedAtVersion
  }

  private func quarantine(_ result: AuditResult) -> [Outgoing] {
    let worker = result.workerID
    let quarantinedAt = version
    var rolledBackTo: UInt64?
    if let snapshots,
      let target = snapshots.target(for: worker, failedAt: appliedVersion(of: result))
    {
      rolledBackTo = target.version
      rollBack(to: target)
    }
    snapshots?.forget(worker)
    quarantineList.add(
      QuarantinedWorker(
        workerID: worker, sequence: result.sequence, failedChecks: result.failedChecks,
        maximumRelativeError: result.maximumRelativeError,
        replayMismatches: result.replayMismatches, quarantinedAtVersion: quarantinedAt,
        rolledBackTo: rolledBackTo))
    // Its gradients waiting for a sync step are not applied.
    forget(worker, droppingGradients: true)
    return advanceSteps()
  }

  /// Returns the parameters, the optimizer and the leased rows' progress to
  /// `target`'s, at the next version: every push applied since is undone (the
  /// exactly-once table keeps them: none is applied again), and every lease
  /// is taken back, so the rows applied since are leased again, to workers in
  /// good standing (a push of an old lease is refused `lease-lost`).
  private func rollBack(to target: RollbackSnapshots.Snapshot) {
    let undone = version - target.version
    store = target.store
    optimizer = target.optimizer
    if var restored = target.work, let current = work {
      restored.releaseAll()
      restored.setRows(current.rows)  // a snapshot from before the first join
      work = restored
    }
    version += 1
    quarantineList.rollbacks += 1
    quarantineList.versionsRolledBack += undone
    snapshots?.rolledBack(to: target, newVersion: version)
    remember(version)
  }
}
