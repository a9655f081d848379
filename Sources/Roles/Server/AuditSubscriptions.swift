import TrainingMath
import WireProtocol

/// The audit subscriptions of a `ParameterServer`: the subscribers with their
/// leases, the workers each is owed a record of (every `every` versions, after
/// a push whose successor the subscription's sampling draw picks, and early
/// for a new worker), the weights of recent versions kept only while a record
/// is owed, and the records to send when an owed worker's gradient is applied. It neither applies gradients nor sends:
/// the server tells it what was applied and sends the records it returns.
///
/// A class, so that the server updates it in place; with no subscriber every
/// call returns at once and allocates nothing.
final class AuditSubscriptions {
  /// One coordinator's subscription.
  struct Subscriber {
    var every: UInt64
    /// The sampling part of the subscription: its probability and seed.
    var sampling = AuditSubscription(every: 0, leaseMilliseconds: 0)
    var expiresAt: UInt64
    var recordsSent: UInt64 = 0
    var recordsDropped: UInt64 = 0
    /// Workers whose next applied gradient this subscriber is owed.
    var owed: Set<UInt32> = []
    /// Workers joined when it subscribed or pushed since: a worker's first push
    /// seen makes its next one owed, so a worker joining later is audited early.
    var seen: Set<UInt32> = []
    /// Sparse models: for each owed worker, the push whose pull was the first
    /// after it became owed; that push is the one audited.
    var pinned: [UInt32: UInt64] = [:]
  }

  /// The name of the model the records' weights belong to.
  let modelName: String
  /// The layout of the weights and gradients the records carry.
  let layout: [TensorSpec]
  private(set) var subscribers: [PeerID: Subscriber] = [:]
  /// Weights of recent versions, newest last, kept while an audit record is owed.
  private(set) var history: [(version: UInt64, weights: [Double])] = []
  /// Audit records handed out (less those that could not be delivered).
  private(set) var recordsSent: UInt64 = 0

  /// No subscriber yet; records will carry `modelName` and weights in `layout`.
  init(modelName: String, layout: [TensorSpec]) {
    self.modelName = modelName
    self.layout = layout
  }

  /// Takes, renews or ends (`every` 0) the subscription of `peer` at `now`
  /// (ms), when the parameters are at `version` with `weights` and `workers`
  /// are joined; returns the subscription's state to answer with. A renewal
  /// takes the request's period, probability and seed from then on.
  func subscribe(
    _ request: AuditSubscription, from peer: PeerID, now: UInt64, version: UInt64,
    workers: some Collection<UInt32>, weights: () -> [Double]
  ) -> SubscriptionState {
    var subscriber =
      subscribers[peer] ?? Subscriber(every: request.every, expiresAt: 0, owed: [])
    subscriber.every = request.every
    subscriber.sampling = request
    subscriber.expiresAt = now + UInt64(max(request.leaseMilliseconds, 1))
    let state = SubscriptionState(
      every: request.every, recordsSent: subscriber.recordsSent,
      recordsDropped: subscriber.recordsDropped)
    if request.every == 0 {
      subscribers[peer] = nil
    } else {
      let isNew = subscribers[peer] == nil
      subscribers[peer] = subscriber
      if isNew {
        // Audit each worker's next gradient right away, then every `every` versions.
        subscribers[peer]!.owed = Set(workers)
        subscribers[peer]!.seen = Set(workers)
        remember(version, workers: workers, weights: weights)
      }
    }
    if subscribers.isEmpty { history.removeAll() }
    return state
  }

  /// Ends the subscriptions whose lease ran out before `now` (ms).
  func expire(now: UInt64) {
    guard !subscribers.isEmpty else { return }
    let before = subscribers.count
    subscribers = subscribers.filter { $0.value.expiresAt >= now }
    if before > 0 && subscribers.isEmpty { history.removeAll() }
  }

  /// Owes no record of `workerID` any more (it left or was dropped).
  func forget(_ workerID: UInt32) {
    for key in subscribers.keys {
      subscribers[key]!.owed.remove(workerID)
      subscribers[key]!.seen.remove(workerID)
      subscribers[key]!.pinned[workerID] = nil
    }
  }

  /// Counts `outgoing`, if it is an audit record, as dropped for its subscriber.
  func deliveryFailed(_ outgoing: Outgoing) {
    let isRecord: Bool
    switch outgoing.message {
    case .auditRecord, .sparseAuditRecord: isRecord = true
    default: isRecord = false
    }
    if isRecord, subscribers[outgoing.peer] != nil {
      subscribers[outgoing.peer]!.recordsSent -= 1
      subscribers[outgoing.peer]!.recordsDropped += 1
      recordsSent -= 1
    }
  }

  /// Marks every worker as owed to subscribers whose period `version` completes,
  /// and keeps the weights of `version` while a record is owed: an owed
  /// worker's next gradient is computed at weights it receives from now on.
  /// Between audit periods nothing is kept, so an update does not copy the
  /// parameters (a kept version shares their storage until they change).
  func remember(_ version: UInt64, workers: some Collection<UInt32>, weights: () -> [Double]) {
    guard !subscribers.isEmpty else { return }
    for key in subscribers.keys
    where subscribers[key]!.every != AuditSubscription.noPeriods
      && version % subscribers[key]!.every == 0
    {
      subscribers[key]!.owed.formUnion(workers)
    }
    guard subscribers.values.contains(where: { !$0.owed.isEmpty }) else {
      history.removeAll(keepingCapacity: true)
      return
    }
    if history.last?.version != version { history.append((version, weights())) }
    let limit = Self.historyLimit(workers: workers.count, parameters: history.last!.weights.count)
    if history.count > limit { history.removeFirst(history.count - limit) }
  }

  /// Bytes of kept weights at most, unless that is fewer than 8 versions.
  static let historyByteBudget = 512 << 20

  /// Versions of the weights kept while audit records are owed: enough for a
  /// gradient as stale as two per worker, `max(8, 2 × workers + 2)`, but no
  /// more than `historyByteBudget` of them (1,000 workers would otherwise keep
  /// 2,002 copies: 16 GB for a million parameters). A gradient computed at
  /// weights no longer kept is not audited; the worker's next one is.
  static func historyLimit(workers: Int, parameters: Int) -> Int {
    let affordable = historyByteBudget / max(1, parameters * MemoryLayout<Double>.size)
    return max(8, min(2 * workers + 2, affordable))
  }

  /// Appends to `outbox` an audit record of `push`, applied at `version`, for
  /// each subscriber owed one (its gradient's values copied from `inPlace`
  /// when read where they arrived). Then each subscriber that samples is owed
  /// the worker's next push when its draw for push `sequence + 1` says so, or
  /// when this is the first push it sees of a worker that joined after it
  /// (`remember` keeps the weights that push will be computed at).
  func appendRecords(
    for push: GradientPush, inPlace: BorrowedValues? = nil, dataset: DatasetIdentity?,
    appliedAt version: UInt64, to outbox: inout [Outgoing]
  ) {
    guard !subscribers.isEmpty else { return }
    defer { drawNext(after: push) }
    guard let dataset,
      let snapshot = history.last(where: { $0.version == push.computedAtVersion })
    else {
      return  // computed at weights too old to have been kept; audit its next gradient
    }
    for key in subscribers.keys.sorted(by: { $0.bytes.lexicographicallyPrecedes($1.bytes) })
    where subscribers[key]!.owed.contains(push.workerID) {
      subscribers[key]!.owed.remove(push.workerID)
      subscribers[key]!.recordsSent += 1
      recordsSent += 1
      let record = AuditRecord(
        workerID: push.workerID, sequence: push.sequence,
        computedAtVersion: push.computedAtVersion, appliedAtVersion: version,
        modelName: modelName,
        weights: NamedTensors(layout: layout, values: snapshot.weights),
        dataset: dataset, rows: push.rows,
        gradient: inPlace.map {
          NamedTensors(layout: push.gradient.layout, values: $0.copied())
        }
          ?? push.gradient)
      outbox.append(Outgoing(to: key, .auditRecord(record)))
    }
  }

  /// Owes each subscriber `push`'s worker's next push when push `sequence + 1`
  /// is sampled under its probability and seed, or when `push` is the first
  /// it sees of a worker that joined after it subscribed.
  private func drawNext(after push: GradientPush) {
    for key in subscribers.keys {
      let isNew = subscribers[key]!.seen.insert(push.workerID).inserted
      if isNew
        || subscribers[key]!.sampling.samples(workerID: push.workerID, sequence: push.sequence + 1)
      {
        subscribers[key]!.owed.insert(push.workerID)
      }
    }
  }

  // MARK: - Sparse pushes

  /// Whether a subscriber wants push `sequence` of `workerID` of a sparse model,
  /// decided at its pull: its draw samples it, or the worker is owed (a new
  /// subscription, a period, or its first push this subscriber sees) and this is
  /// the first pull since (pinned: pulls pipelined after it are not owed). The
  /// server keeps the rows it serves for that pull only when this says yes.
  func wantsSparse(workerID: UInt32, sequence: UInt64) -> Bool {
    var wanted = false
    for key in subscribers.keys {
      if subscribers[key]!.sampling.samples(workerID: workerID, sequence: sequence) {
        wanted = true
      }
      let owed =
        subscribers[key]!.owed.contains(workerID) || !subscribers[key]!.seen.contains(workerID)
      guard owed else { continue }
      if let pin = subscribers[key]!.pinned[workerID] {
        if pin == sequence { wanted = true }
      } else {
        subscribers[key]!.pinned[workerID] = sequence
        wanted = true
      }
    }
    return wanted
  }

  /// Appends to `outbox` a sparse audit record of `push` (its `keys` resolved),
  /// applied at `version`, for each subscriber that wanted it at its pull
  /// (`wantsSparse`), with the rows `served` for that pull; the worker is then
  /// owed no more. When the pull's rows were not kept (or are of other keys),
  /// nothing goes and the worker stays owed: its next pull is pinned instead.
  func appendSparseRecords(
    for push: SparsePush, keys: [UInt64], served: SparseServedRows.Served?, modelName: String,
    dataset: DatasetIdentity?, shard: Shard, appliedAt version: UInt64, to outbox: inout [Outgoing]
  ) {
    guard !subscribers.isEmpty else { return }
    let worker = push.workerID
    for key in subscribers.keys.sorted(by: { $0.bytes.lexicographicallyPrecedes($1.bytes) }) {
      let pin = subscribers[key]!.pinned[worker]
      let pinned = pin == push.sequence
      if let pin, pin <= push.sequence {
        // Its owed push is applied now, or was (a pin passed: pin the next pull).
        subscribers[key]!.pinned[worker] = nil
        if !subscribers[key]!.seen.contains(worker) { subscribers[key]!.owed.insert(worker) }
      }
      subscribers[key]!.seen.insert(worker)
      let wanted =
        pinned || subscribers[key]!.sampling.samples(workerID: worker, sequence: push.sequence)
      guard wanted, let served, served.keys == keys, let dataset else { continue }
      subscribers[key]!.owed.remove(worker)
      subscribers[key]!.recordsSent += 1
      recordsSent += 1
      let record = SparseAuditRecord(
        workerID: worker, sequence: push.sequence, computedAtVersion: served.version,
        appliedAtVersion: version, modelName: modelName, dataset: dataset, rows: push.rows,
        serverShard: shard, keys: keys, values: served.values, gradients: push.gradients)
      outbox.append(Outgoing(to: key, .sparseAuditRecord(record)))
    }
  }

  /// Owes every worker to the subscribers whose period `version` completes
  /// (a sparse model keeps no weights for it: its pulls keep their rows).
  func owePeriods(at version: UInt64, workers: some Collection<UInt32>) {
    for key in subscribers.keys
    where subscribers[key]!.sampling.hasPeriods && version % subscribers[key]!.every == 0 {
      subscribers[key]!.owed.formUnion(workers)
    }
  }
}
