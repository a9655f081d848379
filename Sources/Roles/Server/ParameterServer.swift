import TrainingMath
import WireProtocol

/// The parameter server as a state machine: messages in, messages out, no
/// sockets. It holds the parameters, applies gradients (on arrival in async
/// mode, averaged per step in sync mode), tracks the workers and their
/// liveness, leases rows when it drives the epochs, and hands applied
/// gradients to audit subscribers. Each push is applied at most once: a
/// retried push is answered again, never re-applied. A refused message
/// changes nothing but the rejection counter.
///
/// It is the facade over parts with one job each: `Membership` (who is joined,
/// the exactly-once table), `StepBarrier` (sync/ssp steps and the staleness
/// bound), `AuditSubscriptions` (subscribers, owed records, kept weights) and
/// `LeasedWork`, and with `--quarantine` `QuarantineList` and `RollbackSnapshots`
/// (acted on in `ParameterServer+Quarantine.swift`); it keeps the parameters,
/// the optimizer and the counters, and turns the parts' verdicts into replies.
/// Its checkpoint and status projections are in `ParameterServer+Projections.swift`.
public final class ParameterServer {
  /// The configuration in force.
  /// The configuration in force. Its `initialParameters` are moved into
  /// `parameters` (and emptied here), so the server holds one copy, not two.
  public private(set) var configuration: ServerConfiguration
  /// The current parameters, each tensor in its element type.
  public internal(set) var store: ParameterStore
  /// The current parameters as Float64 (the storage itself when no tensor is
  /// Float32).
  public var parameters: [Double] { store.values }
  /// The optimizer with its state.
  public internal(set) var optimizer: Optimizer
  /// The number of updates applied to the parameters.
  public internal(set) var version: UInt64 = 0
  /// Gradients applied (several per version in sync mode).
  public internal(set) var gradientsApplied: UInt64 = 0
  /// Dataset rows in the gradients applied since this process started (not
  /// checkpointed): the samples trained on, for the metrics' samples per second.
  public internal(set) var rowsApplied: UInt64 = 0
  /// Messages refused or dropped.
  public private(set) var rejected: UInt64 = 0
  /// Audit records handed out.
  public var auditRecordsSent: UInt64 { audits.recordsSent }
  /// Audit verdicts reported by coordinators, failures among them, and the latest.
  public private(set) var auditsReported: UInt64 = 0
  public private(set) var auditsFailed: UInt64 = 0
  public private(set) var lastAudit: AuditResult?
  /// The latest evaluation on held-out data a coordinator reported.
  public private(set) var lastEvaluation: EvaluationReport?
  /// Refusals so far, by reason.
  public private(set) var rejectedByReason: [ErrorCode: UInt64] = [:]
  /// How checkpoints are going, for `status` (kept by the server loop's
  /// `Checkpointer`; nil when the server writes none).
  public var checkpointHealth: CheckpointHealth?
  /// What was restored, when resumed from a checkpoint (its file name is the
  /// caller's to fill in); `status` reports it.
  public var resume: ResumeStatus?
  /// Staleness (versions between computing and applying) of recently applied
  /// gradients, for metrics; drained by `drainStaleness()`, at most 100,000 kept.
  private var stalenessSamples: [UInt64] = []

  /// Keeps a staleness sample for the metrics.
  func recordStaleness(_ staleness: UInt64) {
    if stalenessSamples.count < 100_000 { stalenessSamples.append(staleness) }
  }

  /// The staleness samples since the last call.
  public func drainStaleness() -> [UInt64] {
    defer { stalenessSamples.removeAll(keepingCapacity: true) }
    return stalenessSamples
  }

  /// The joined workers, the exactly-once table and the data set.
  let membership = Membership()
  /// Row leases, when the server drives the epochs.
  public internal(set) var work: LeasedWork?
  /// Sync and ssp: gradients waiting for their step, and replies for the staleness bound.
  private let barrier = StepBarrier()
  /// Audit subscribers, what each is owed, and the weights kept for their records.
  let audits: AuditSubscriptions
  /// The quarantined workers and the rollbacks (`--quarantine`).
  let quarantineList = QuarantineList()
  /// The states a rollback returns to (`--quarantine`, async mode).
  var snapshots: RollbackSnapshots?
  /// A sparse model's keyed table, when the configuration has one.
  public internal(set) var keyed: KeyedParameters?

  /// A server starting from the configuration's initial parameters at version 0.
  public init(configuration: ServerConfiguration) {
    self.configuration = configuration
    store = ParameterStore(
      layout: configuration.sliceLayout, values: configuration.initialParameters)
    self.configuration.initialParameters = []
    audits = AuditSubscriptions(
      modelName: configuration.model.name, layout: configuration.sliceLayout)
    optimizer = Optimizer(
      settings: configuration.optimizer, parameterCount: configuration.initialParameters.count)
    if let epochs = configuration.leasedEpochs {
      work = LeasedWork(epochs: epochs, chunkRows: configuration.chunkRows)
    }
    keyed = configuration.keyed.map {
      KeyedParameters(
        model: $0.model, optimizer: $0.optimizer, seed: $0.seed, shard: configuration.shard)
    }
    startSnapshots()
  }

  /// A server resuming from `checkpoint`; it keeps the checkpoint's model,
  /// mode, learning rate, parameters, version, exactly-once table and epoch
  /// progress. No worker is joined and no lease is held: workers rejoin.
  public init(configuration: ServerConfiguration, resuming checkpoint: ServerCheckpoint)
    throws(RoleError)
  {
    guard checkpoint.model == configuration.model else {
      throw .invalidArgument(
        "the checkpoint holds model \(checkpoint.model), but the server was started for \(configuration.model)"
      )
    }
    var restored = configuration
    restored.mode = checkpoint.mode
    restored.requiredWorkers = Int(checkpoint.requiredWorkers)
    restored.staleness = checkpoint.staleness
    guard checkpoint.shard == configuration.shard else {
      throw .invalidArgument(
        "the checkpoint belongs to server shard \(checkpoint.shard), this server was started as \(configuration.shard)"
      )
    }
    restored.optimizer = checkpoint.optimizer.settings
    restored.initialParameters = checkpoint.parameters
    if let progress = checkpoint.work {
      restored.leasedEpochs = progress.epochs
      restored.chunkRows = Int(progress.chunkRows)
    } else {
      restored.leasedEpochs = nil
    }
    restored.initialParameters = []
    self.configuration = restored
    audits = AuditSubscriptions(modelName: restored.model.name, layout: restored.sliceLayout)
    store = ParameterStore(layout: restored.sliceLayout, values: checkpoint.parameters)
    optimizer = checkpoint.optimizer
    version = checkpoint.version
    gradientsApplied = checkpoint.gradientsApplied
    rejected = checkpoint.rejected
    membership.restore(from: checkpoint)
    if let progress = checkpoint.work {
      work = LeasedWork(
        epochs: progress.epochs, chunkRows: Int(progress.chunkRows),
        rows: Int(checkpoint.dataset?.rows ?? 0), epoch: progress.epoch,
        nextRows: progress.nextRows.map { Int($0) })
    }
    resume = ResumeStatus(restoredFrom: checkpoint, work: work)
    if let model = restored.keyed {
      let parameters = KeyedParameters(
        model: model.model, optimizer: model.optimizer, seed: model.seed, shard: restored.shard)
      if let saved = checkpoint.keyedTable {
        guard saved.modelName == model.model.wireName, saved.table.width == model.model.rowWidth
        else {
          throw .invalidArgument(
            "the checkpoint's keyed table is of \(saved.modelName), but the server was started for \(model.model.wireName)"
          )
        }
        parameters.table = saved.table
      }
      keyed = parameters
    }
    startSnapshots()
  }

  /// The parameters with their layout (a Float64 copy when some tensor is
  /// Float32; otherwise the storage itself, shared).
  public var namedParameters: NamedTensors {
    NamedTensors(layout: sliceLayout, values: store.values)
  }

  /// The owned slice's layout, computed once (it is on every reply).
  private lazy var sliceLayout: [TensorSpec] = configuration.sliceLayout
  /// Applies `gradient` with the optimizer (a Float32 tensor is stored, so
  /// rounded, as Float32).
  private func update(with gradient: [Double]) {
    store.apply(&optimizer, gradient: gradient)
  }

  /// Applies a gradient read where it arrived, like `update(with:)`.
  private func update(with gradient: BorrowedValues) {
    store.apply(&optimizer, gradient: gradient)
  }

  /// Handles one decoded message from `peer` at monotonic time `now` (ms) and
  /// returns the messages to send.
  public func receive(_ message: WireMessage, from peer: PeerID, now: UInt64) -> [Outgoing] {
    receive(message, pushValuesInPlace: nil, from: peer, now: now)
  }

  /// Handles one decoded message as `receive(_:from:now:)` does; a push whose
  /// gradient values were left where they arrived
  /// (`WireCodec.decode(_:later:reusing:pushValuesInPlace:)`) comes with them
  /// in `pushValues`, borrowed for this call (`BorrowedValues`): they are
  /// applied from there and copied only to be kept (a sync step, an audit record).
  public func receive(
    _ message: WireMessage, pushValuesInPlace pushValues: BorrowedValues?,
    from peer: PeerID, now: UInt64
  ) -> [Outgoing] {
    outbox.removeAll(keepingCapacity: true)
    audits.expire(now: now)
    if !quarantineList.ids.isEmpty, let refusal = refuseQuarantined(message, from: peer) {
      return refusal
    }
    switch message {
    case .join(let join): return self.join(join, from: peer, now: now)
    case .push(let push):
      return self.push(push, inPlace: pushValues, from: peer, now: now)
    case .pushes(let pushes): return self.pushes(pushes, from: peer, now: now)
    case .leave(let workerID): return leave(workerID, from: peer)
    case .heartbeat(let workerID):
      guard seen(workerID, from: peer, now: now) else {
        return refuseNotJoined(workerID, from: peer)
      }
      return []
    case .leaseRequest(let workerID): return leaseRequest(workerID, from: peer, now: now)
    case .statusRequest: return [Outgoing(to: peer, .status(status))]
    case .auditSubscribe(let request): return subscribe(request, from: peer, now: now)
    case .auditResult(let result):
      auditsReported += 1
      if !result.passed { auditsFailed += 1 }
      lastAudit = result
      return takeVerdict(result)
    case .evaluation(let report):
      lastEvaluation = report
      return []
    case .sparsePull(let pull): return sparsePull(pull, from: peer, now: now)
    case .sparsePush(let push): return sparsePush(push, from: peer, now: now)
    case .weights, .status, .subscription, .auditRecord, .left, .error, .lease, .noLease,
      .sparseRows, .sparseAck, .sparseAuditRecord:
      return refuse(
        peer, .unexpectedMessage, "a server does not accept \(message.type) messages")
    }
  }

  /// Drops workers silent for longer than the liveness timeout, as if they had
  /// left: their leases return to the pool and sync barriers stop waiting for
  /// them. Returns the replies this releases and the ids dropped.
  public func expireSilentWorkers(now: UInt64) -> (outgoing: [Outgoing], dropped: [UInt32]) {
    let limit = configuration.deadAfterMilliseconds
    let dead = membership.silentWorkers(now: now, limit: limit)
    guard !dead.isEmpty else { return ([], []) }
    outbox.removeAll(keepingCapacity: true)
    for id in dead {
      forget(id)
      membership.workersDead += 1
    }
    return (advanceSteps(), dead)
  }

  /// Records that `workerID` spoke from `peer`; false if it is not joined from there.
  func seen(_ workerID: UInt32, from peer: PeerID, now: UInt64) -> Bool {
    membership.seen(workerID, from: peer, now: now)
  }

  /// Drops `workerID` as if it left: its lease returns to the pool, and its
  /// gradients waiting for a sync step are dropped with leased work (their
  /// rows are leased again) or when `droppingGradients` says so.
  func forget(_ workerID: UInt32, droppingGradients: Bool = false) {
    membership.remove(workerID)
    barrier.forget(workerID, droppingGradients: droppingGradients || work != nil)
    work?.release(workerID)
    audits.forget(workerID)
    keyed?.forget(workerID)
  }

  /// Counts a frame that failed to decode and answers it with the reason.
  public func rejectUndecodable(_ error: DecodeError, from peer: PeerID) -> [Outgoing] {
    refuse(peer, error.code, error.description)
  }

  /// Counts a message that could not be delivered (the peer is gone or its
  /// queue is full); an audit record that was lost is counted for its subscriber.
  public func deliveryFailed(_ outgoing: Outgoing) {
    audits.deliveryFailed(outgoing)
  }

  /// Workers currently joined.
  public var joinedWorkers: [UInt32] { membership.workers.keys.sorted() }

  // MARK: - Membership

  private func join(_ join: Join, from peer: PeerID, now: UInt64) -> [Outgoing] {
    guard join.model == configuration.model else {
      return refuse(
        peer, .layoutMismatch,
        "worker \(join.workerID) computes \(join.model), this server holds \(configuration.model)")
    }
    switch membership.admit(join, from: peer, now: now, leased: work != nil) {
    case .refused(let code, let message):
      return refuse(peer, code, message)
    case .retried:
      return [joinReply(to: peer, workerID: join.workerID)]
    case .admitted:
      work?.setRows(Int(join.dataset.rows))
      // A worker that rejoins (after a restart of either side) continues its numbering.
      return [joinReply(to: peer, workerID: join.workerID)]
        + advanceSteps()
    }
  }

  private func leaseRequest(_ workerID: UInt32, from peer: PeerID, now: UInt64) -> [Outgoing] {
    guard seen(workerID, from: peer, now: now) else {
      return refuseNotJoined(workerID, from: peer)
    }
    guard work != nil else {
      return refuse(
        peer, .unexpectedMessage,
        "this server does not lease rows (start it with --epochs); give the worker --shard I/N")
    }
    let grant = work!.grant(to: workerID)
    // A worker without rows is not part of a sync step.
    let released = advanceSteps()
    switch grant {
    case .lease(let epoch, let rows):
      let lease = Lease(
        epoch: epoch, firstRow: UInt64(rows.lowerBound), rowCount: UInt64(rows.count),
        weights: WeightsReply(
          version: version, acknowledgedSequence: membership.sequences[workerID]?.highest ?? 0,
          appliedBelow: membership.sequences[workerID]?.below ?? AppliedBitmap(),
          parameters: namedParameters))
      return released + [Outgoing(to: peer, .lease(lease))]
    case .wait:
      return released
        + [Outgoing(to: peer, .noLease(NoLease(finished: false, retryAfterMilliseconds: 50)))]
    case .finished:
      return released
        + [Outgoing(to: peer, .noLease(NoLease(finished: true, retryAfterMilliseconds: 0)))]
    }
  }

  private func leave(_ workerID: UInt32, from peer: PeerID) -> [Outgoing] {
    guard membership.isJoined(workerID, from: peer) else {
      return refuseNotJoined(workerID, from: peer)
    }
    forget(workerID)
    membership.workersLeft += 1
    return [Outgoing(to: peer, .left(workerID: workerID))] + advanceSteps()
  }

  // MARK: - Gradients

  private func push(
    _ push: GradientPush, inPlace: BorrowedValues?, from peer: PeerID, now: UInt64
  ) -> [Outgoing] {
    guard seen(push.workerID, from: peer, now: now) else {
      return refuseNotJoined(push.workerID, from: peer)
    }
    let window = membership.window(of: push.workerID)
    switch window.verdict(for: push.sequence) {
    case .applied:
      // A retry of a push already applied: answer it again, apply nothing.
      return answer(weightsReply(to: peer, acknowledging: push.sequence))
    case .tooOld:
      return refuseReplayed(push, below: window, from: peer)
    case .new:
      break
    }
    if let waiting = barrier.pendingPush(of: push.workerID), waiting.sequence == push.sequence {
      return []  // a retry of a gradient waiting for its step: answered when the step is done
    }
    if barrier.isAwaitingReply(push.workerID) {
      return refuse(
        peer, .unexpectedMessage,
        "worker \(push.workerID) must wait for the answer to its previous push")
    }
    if let refusal = work?.refusal(
      of: push.rows, from: push.workerID,
      after: barrier.pendingRows(of: push.workerID))
    {
      return refuse(peer, .leaseLost, refusal)
    }
    guard push.gradient.layout == sliceLayout else {
      return refuseLayout(of: push, from: peer)
    }
    if let rows = membership.dataset?.rows,
      let beyond = push.rows.first(where: { UInt64($0) >= rows })
    {
      return refuse(
        peer, .datasetMismatch,
        "push \(push.sequence) of worker \(push.workerID) names row \(beyond), the data has \(rows) rows"
      )
    }
    switch configuration.mode {
    case .async:
      guard push.computedAtVersion <= version else {
        return refuseFuture(push, from: peer)
      }
      applyNow(push, inPlace: inPlace)
      return answer(weightsReply(to: peer, acknowledging: push.sequence))
    case .sync, .ssp:
      // A worker's gradient belongs to its next clock, never to a step already done.
      let clock = barrier.clock(of: push.workerID, version: version)
      let bound = configuration.staleness
      guard push.computedAtVersion <= version, clock - push.computedAtVersion <= bound else {
        return refuse(
          peer, .versionMismatch,
          "step \(clock + 1) takes gradients computed at version \(clock - min(clock, bound)) or later (staleness \(bound)), got \(push.computedAtVersion); the server is at \(version)"
        )
      }
      barrier.hold(push, inPlace: inPlace, clock: clock)
      return advanceSteps()
    }
  }

  /// Async: applies `push` on arrival, as one version; its gradient's values
  /// are `inPlace` when they were read where they arrived.
  private func applyNow(_ push: GradientPush, inPlace: BorrowedValues? = nil) {
    if let inPlace { update(with: inPlace) } else { update(with: push.gradient.values) }
    version += 1
    gradientsApplied += 1
    recordApplied(push)
    appendAuditRecords(for: push, inPlace: inPlace)
    remember(version)
  }

  /// Several pushes of one worker in one frame (async mode, fixed shards): all
  /// are checked first, and one refusal refuses the frame and changes nothing;
  /// then each not applied before is applied in order, and one reply
  /// acknowledges the last. A resent frame is answered again, applied no twice.
  private func pushes(_ pushes: [GradientPush], from peer: PeerID, now: UInt64) -> [Outgoing] {
    guard configuration.mode == .async, work == nil else {
      return refuse(
        peer, .unexpectedMessage,
        "several pushes per frame need async mode and workers on fixed shards; push one at a time")
    }
    let workerID = pushes[0].workerID
    guard seen(workerID, from: peer, now: now) else {
      return refuseNotJoined(workerID, from: peer)
    }
    let window = membership.window(of: workerID)
    for push in pushes {
      guard window.verdict(for: push.sequence) != .tooOld else {
        return refuseReplayed(push, below: window, from: peer)
      }
      guard push.gradient.layout == sliceLayout else {
        return refuseLayout(of: push, from: peer)
      }
      guard push.computedAtVersion <= version else {
        return refuseFuture(push, from: peer)
      }
    }
    for push in pushes where window.verdict(for: push.sequence) == .new {
      applyNow(push)
    }
    return answer(weightsReply(to: peer, acknowledging: pushes[pushes.count - 1].sequence))
  }

  private func recordApplied(_ push: GradientPush) {
    let staleness = version - 1 - min(version - 1, push.computedAtVersion)
    membership.markApplied(push, staleness: staleness)
    recordStaleness(staleness)
    rowsApplied += UInt64(push.rows.count)
    work?.markApplied(push.rows, from: push.workerID)
    snapshots?.applied(push.workerID, at: version)
  }

  /// Sync and ssp: applies every step whose members have all contributed (the
  /// first only once the required workers have joined), averaging its gradients
  /// summed in worker-id order, so the result does not depend on arrival order.
  /// Then answers each waiting worker that is no more than `staleness` steps
  /// ahead of the slowest member; with staleness 0 that is exactly BSP. The
  /// answers go to the outbox.
  func advanceSteps() -> [Outgoing] {
    guard configuration.mode != .async, membership.everJoined.count >= configuration.requiredWorkers
    else {
      return outbox
    }
    while barrier.isComplete(version, joined: membership.workers.keys, leases: work) {
      let step = barrier.average(version, count: store.count)
      update(with: step.values)
      let clock = version
      version += 1
      gradientsApplied += UInt64(step.gradients)
      barrier.removeStep(clock) { push in
        recordApplied(push)
        appendAuditRecords(for: push)
      }
      remember(version)
    }
    barrier.releaseLargeBuffers()
    barrier.releaseReplies(
      version: version, staleness: configuration.staleness, joined: membership.workers.keys,
      leases: work
    ) { workerID, sequence in
      outbox.append(weightsReply(to: membership.workers[workerID]!.peer, acknowledging: sequence))
    }
    return outbox
  }

  // MARK: - Audits

  private func subscribe(_ request: AuditSubscription, from peer: PeerID, now: UInt64)
    -> [Outgoing]
  {
    let state = audits.subscribe(
      request, from: peer, now: now, version: version, workers: membership.workers.keys
    ) { parameters }
    return [Outgoing(to: peer, .subscription(state))]
  }

  /// Has the audit subscriptions owe records and keep weights as of `version`.
  func remember(_ version: UInt64) {
    audits.remember(version, workers: membership.workers.keys) { parameters }
    if let snapshots, snapshots.isDue(at: version) { snapshots.take(snapshot) }
  }

  /// Appends to the outbox the audit records owed of `push`, just applied.
  private func appendAuditRecords(
    for push: GradientPush, inPlace: BorrowedValues? = nil
  ) {
    let before = outbox.count
    audits.appendRecords(
      for: push, inPlace: inPlace, dataset: membership.dataset, appliedAt: version, to: &outbox)
    if configuration.quarantine != nil, outbox.count > before {
      // Its verdict will name the push by sequence: remember this server's version of it.
      quarantineList.audited(push.workerID, sequence: push.sequence, version: version)
    }
  }

  // MARK: - Replies

  /// The array `receive` last returned, kept so that the next answer is built in
  /// its storage: no allocation once the caller has let go of it. `receive`
  /// empties it first thing, so it never keeps the parameters shared (an update
  /// would then copy them).
  private var outbox: [Outgoing] = []

  /// `item` as the only message to send, in the outbox's storage.
  private func answer(_ item: Outgoing) -> [Outgoing] {
    outbox.append(item)
    return outbox
  }

  private func weightsReply(to peer: PeerID, acknowledging sequence: UInt64) -> Outgoing {
    Outgoing(
      to: peer,
      .weights(
        WeightsReply(
          version: version, acknowledgedSequence: sequence, parameters: namedParameters)))
  }

  /// The answer to a join: the weights, the worker's highest applied sequence and
  /// which of the 256 below it were applied (it may have pushes in flight).
  private func joinReply(to peer: PeerID, workerID: UInt32) -> Outgoing {
    let window = membership.window(of: workerID)
    return Outgoing(
      to: peer,
      .weights(
        WeightsReply(
          version: version, acknowledgedSequence: window.highest, appliedBelow: window.below,
          parameters: namedParameters)))
  }

  private func refuseNotJoined(_ workerID: UInt32, from peer: PeerID) -> [Outgoing] {
    refuse(peer, .notJoined, "worker \(workerID) has not joined from this connection")
  }

  private func refuseReplayed(_ push: GradientPush, below window: SequenceWindow, from peer: PeerID)
    -> [Outgoing]
  {
    refuse(
      peer, .replayed,
      "push \(push.sequence) of worker \(push.workerID) is older than the \(SequenceWindow.width) pushes remembered below the last applied, \(window.highest)"
    )
  }

  private func refuseLayout(of push: GradientPush, from peer: PeerID) -> [Outgoing] {
    refuse(
      peer, .layoutMismatch,
      "gradient layout \(push.gradient.layout) differs from this server's parameters \(sliceLayout)"
    )
  }

  private func refuseFuture(_ push: GradientPush, from peer: PeerID) -> [Outgoing] {
    refuse(
      peer, .versionMismatch,
      "gradient computed at version \(push.computedAtVersion), but the server is at \(version)")
  }

  func refuse(_ peer: PeerID, _ code: ErrorCode, _ message: String) -> [Outgoing] {
    rejected += 1
    rejectedByReason[code, default: 0] += 1
    return [Outgoing(to: peer, .error(ErrorReply(code: code, message: message)))]
  }
}
