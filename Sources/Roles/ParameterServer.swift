import TrainingMath
import WireProtocol

/// How a parameter server is set up.
public struct ServerConfiguration: Sendable {
  /// How gradients are applied.
  public var mode: ConsistencyMode
  /// In sync mode, workers that must have joined before the first step.
  public var requiredWorkers: Int
  /// The optimizer.
  public var optimizer: SGD
  /// The model the parameters belong to (name and layout only).
  public var model: ModelDescriptor
  /// The initial parameters, in the model's layout.
  public var initialParameters: [Double]

  /// A configuration; the parameters must fit the model's layout.
  public init(
    mode: ConsistencyMode, requiredWorkers: Int, optimizer: SGD, model: ModelDescriptor,
    initialParameters: [Double]
  ) {
    precondition(initialParameters.count == model.layout.totalCount)
    self.mode = mode
    self.requiredWorkers = max(1, requiredWorkers)
    self.optimizer = optimizer
    self.model = model
    self.initialParameters = initialParameters
  }
}

/// The parameter server as a state machine: messages in, messages out, no
/// sockets. It holds the parameters, applies gradients (on arrival in async
/// mode, averaged per step in sync mode), tracks the workers and hands applied
/// gradients to audit subscribers. A refused message changes nothing but the
/// rejection counter.
public final class ParameterServer {
  private struct Worker {
    var peer: PeerID
    var shard: Shard
    var lastSequence: UInt64 = 0
    var pushesApplied: UInt64 = 0
  }

  private struct Subscriber {
    var every: UInt64
    var expiresAt: UInt64
    var recordsSent: UInt64 = 0
    var recordsDropped: UInt64 = 0
    /// Workers whose next applied gradient this subscriber is owed.
    var owed: Set<UInt32> = []
  }

  /// The configuration in force.
  public let configuration: ServerConfiguration
  /// The current parameters.
  public private(set) var parameters: [Double]
  /// The number of updates applied to the parameters.
  public private(set) var version: UInt64 = 0
  /// Gradients applied (several per version in sync mode).
  public private(set) var gradientsApplied: UInt64 = 0
  /// Messages refused or dropped.
  public private(set) var rejected: UInt64 = 0
  /// Audit records handed out.
  public private(set) var auditRecordsSent: UInt64 = 0

  private var workers: [UInt32: Worker] = [:]
  private var everJoined: Set<UInt32> = []
  private var workersLeft: UInt32 = 0
  private var pending: [UInt32: GradientPush] = [:]
  private var subscribers: [PeerID: Subscriber] = [:]
  /// Weights of recent versions, newest last, kept while anyone audits.
  private var history: [(version: UInt64, weights: [Double])] = []

  /// A server starting from the configuration's initial parameters at version 0.
  public init(configuration: ServerConfiguration) {
    self.configuration = configuration
    self.parameters = configuration.initialParameters
  }

  /// The parameters with their layout.
  public var namedParameters: NamedTensors {
    NamedTensors(layout: configuration.model.layout, values: parameters)
  }

  /// Handles one decoded message from `peer` at monotonic time `now` (ms) and
  /// returns the messages to send.
  public func receive(_ message: WireMessage, from peer: PeerID, now: UInt64) -> [Outgoing] {
    expireSubscribers(now: now)
    switch message {
    case .join(let join): return self.join(join, from: peer)
    case .push(let push): return self.push(push, from: peer)
    case .leave(let workerID): return leave(workerID, from: peer)
    case .statusRequest: return [Outgoing(to: peer, .status(status))]
    case .auditSubscribe(let request): return subscribe(request, from: peer, now: now)
    case .weights, .status, .subscription, .auditRecord, .left, .error:
      return refuse(
        peer, .unexpectedMessage, "a server does not accept \(message.type) messages")
    }
  }

  /// Counts a frame that failed to decode and answers it with the reason.
  public func rejectUndecodable(_ error: DecodeError, from peer: PeerID) -> [Outgoing] {
    refuse(peer, error.code, error.description)
  }

  /// Counts a message that could not be delivered (the peer is gone or its
  /// queue is full); an audit record that was lost is counted for its subscriber.
  public func deliveryFailed(_ outgoing: Outgoing) {
    if case .auditRecord = outgoing.message, subscribers[outgoing.peer] != nil {
      subscribers[outgoing.peer]!.recordsSent -= 1
      subscribers[outgoing.peer]!.recordsDropped += 1
      auditRecordsSent -= 1
    }
  }

  /// The state `pstrain status` reports.
  public var status: ServerStatus {
    ServerStatus(
      mode: configuration.mode, version: version, gradientsApplied: gradientsApplied,
      rejected: rejected, learningRate: configuration.optimizer.learningRate,
      requiredWorkers: UInt32(configuration.requiredWorkers), modelName: configuration.model.name,
      parameters: namedParameters,
      workers: workers.keys.sorted().map { id in
        let worker = workers[id]!
        return WorkerStatus(
          workerID: id, shard: worker.shard, pushesApplied: worker.pushesApplied,
          lastSequence: worker.lastSequence)
      }, workersLeft: workersLeft, auditRecordsSent: auditRecordsSent)
  }

  /// Workers currently joined.
  public var joinedWorkers: [UInt32] { workers.keys.sorted() }

  // MARK: - Membership

  private func join(_ join: Join, from peer: PeerID) -> [Outgoing] {
    guard join.model == configuration.model else {
      return refuse(
        peer, .layoutMismatch,
        "worker \(join.workerID) computes \(join.model), this server holds \(configuration.model)")
    }
    if let existing = workers[join.workerID] {
      guard existing.peer == peer else {
        return refuse(
          peer, .duplicateWorker,
          "worker id \(join.workerID) is already joined from another connection; give each worker its own id"
        )
      }
      return [weightsReply(to: peer)]  // a retried join: answer it again
    }
    if let other = workers.values.first, other.shard.count != join.shard.count {
      return refuse(
        peer, .shardMismatch,
        "worker \(join.workerID) uses \(join.shard.count) shards, joined workers use \(other.shard.count)"
      )
    }
    workers[join.workerID] = Worker(peer: peer, shard: join.shard)
    everJoined.insert(join.workerID)
    return [weightsReply(to: peer)] + completeSyncStepIfReady()
  }

  private func leave(_ workerID: UInt32, from peer: PeerID) -> [Outgoing] {
    guard let worker = workers[workerID], worker.peer == peer else {
      return refuse(peer, .notJoined, "worker \(workerID) is not joined from this connection")
    }
    workers[workerID] = nil
    pending[workerID] = nil
    workersLeft += 1
    for key in subscribers.keys { subscribers[key]!.owed.remove(workerID) }
    return [Outgoing(to: peer, .left(workerID: workerID))] + completeSyncStepIfReady()
  }

  // MARK: - Gradients

  private func push(_ push: GradientPush, from peer: PeerID) -> [Outgoing] {
    guard let worker = workers[push.workerID], worker.peer == peer else {
      return refuse(peer, .notJoined, "worker \(push.workerID) has not joined from this connection")
    }
    guard push.sequence > worker.lastSequence else {
      return refuse(
        peer, .replayed,
        "push \(push.sequence) of worker \(push.workerID) was already applied (last applied: \(worker.lastSequence))"
      )
    }
    guard pending[push.workerID] == nil else {
      return refuse(
        peer, .unexpectedMessage,
        "worker \(push.workerID) already has a gradient waiting for step \(version + 1)")
    }
    guard push.gradient.layout == configuration.model.layout else {
      return refuse(
        peer, .layoutMismatch,
        "gradient layout \(push.gradient.layout) differs from the parameters' \(configuration.model.layout)"
      )
    }
    switch configuration.mode {
    case .async:
      guard push.computedAtVersion <= version else {
        return refuse(
          peer, .versionMismatch,
          "gradient computed at version \(push.computedAtVersion), but the server is at \(version)")
      }
      configuration.optimizer.apply(gradient: push.gradient.values, to: &parameters)
      version += 1
      gradientsApplied += 1
      workers[push.workerID]!.lastSequence = push.sequence
      workers[push.workerID]!.pushesApplied += 1
      let records = auditRecords(for: [push])
      remember(version)
      return records + [weightsReply(to: peer)]
    case .sync:
      guard push.computedAtVersion == version else {
        return refuse(
          peer, .versionMismatch,
          "sync step \(version + 1) takes gradients computed at version \(version), got \(push.computedAtVersion)"
        )
      }
      pending[push.workerID] = push
      return completeSyncStepIfReady()
    }
  }

  /// In sync mode, applies the step once every joined worker has contributed and
  /// the required number of workers has joined. Gradients are summed in worker-id
  /// order so the result does not depend on arrival order.
  private func completeSyncStepIfReady() -> [Outgoing] {
    guard configuration.mode == .sync, !pending.isEmpty,
      everJoined.count >= configuration.requiredWorkers,
      workers.keys.allSatisfy({ pending[$0] != nil })
    else { return [] }
    let contributors = pending.keys.sorted()
    var sum = [Double](repeating: 0, count: parameters.count)
    for id in contributors {
      let values = pending[id]!.gradient.values
      for index in sum.indices { sum[index] += values[index] }
    }
    let count = Double(contributors.count)
    for index in sum.indices { sum[index] /= count }
    configuration.optimizer.apply(gradient: sum, to: &parameters)
    version += 1
    gradientsApplied += UInt64(contributors.count)
    let pushes = contributors.map { pending[$0]! }
    for push in pushes {
      workers[push.workerID]!.lastSequence = push.sequence
      workers[push.workerID]!.pushesApplied += 1
    }
    pending.removeAll()
    let records = auditRecords(for: pushes)
    remember(version)
    return records + pushes.map { weightsReply(to: workers[$0.workerID]!.peer) }
  }

  // MARK: - Audits

  private func subscribe(_ request: AuditSubscription, from peer: PeerID, now: UInt64)
    -> [Outgoing]
  {
    var subscriber =
      subscribers[peer] ?? Subscriber(every: request.every, expiresAt: 0, owed: [])
    subscriber.every = request.every
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
        subscribers[peer]!.owed = Set(workers.keys)
        remember(version)
      }
    }
    if subscribers.isEmpty { history.removeAll() }
    return [Outgoing(to: peer, .subscription(state))]
  }

  private func expireSubscribers(now: UInt64) {
    let before = subscribers.count
    subscribers = subscribers.filter { $0.value.expiresAt >= now }
    if before > 0 && subscribers.isEmpty { history.removeAll() }
  }

  /// Keeps the weights of `version` while anyone audits, and marks every worker
  /// as owed to subscribers whose period `version` completes.
  private func remember(_ version: UInt64) {
    guard !subscribers.isEmpty else { return }
    for key in subscribers.keys where version % subscribers[key]!.every == 0 {
      subscribers[key]!.owed.formUnion(workers.keys)
    }
    if history.last?.version != version { history.append((version, parameters)) }
    let limit = max(8, 2 * workers.count + 2)
    if history.count > limit { history.removeFirst(history.count - limit) }
  }

  private func auditRecords(for pushes: [GradientPush]) -> [Outgoing] {
    guard !subscribers.isEmpty else { return [] }
    var outgoing: [Outgoing] = []
    for push in pushes {
      guard let snapshot = history.last(where: { $0.version == push.computedAtVersion }) else {
        continue  // computed at weights too old to have been kept; audit its next gradient
      }
      for key in subscribers.keys.sorted(by: { $0.bytes.lexicographicallyPrecedes($1.bytes) })
      where subscribers[key]!.owed.contains(push.workerID) {
        subscribers[key]!.owed.remove(push.workerID)
        subscribers[key]!.recordsSent += 1
        auditRecordsSent += 1
        let record = AuditRecord(
          workerID: push.workerID, sequence: push.sequence,
          computedAtVersion: push.computedAtVersion, appliedAtVersion: version,
          modelName: configuration.model.name,
          weights: NamedTensors(layout: configuration.model.layout, values: snapshot.weights),
          samples: push.samples, gradient: push.gradient)
        outgoing.append(Outgoing(to: key, .auditRecord(record)))
      }
    }
    return outgoing
  }

  // MARK: - Replies

  private func weightsReply(to peer: PeerID) -> Outgoing {
    Outgoing(to: peer, .weights(WeightsReply(version: version, parameters: namedParameters)))
  }

  private func refuse(_ peer: PeerID, _ code: ErrorCode, _ message: String) -> [Outgoing] {
    rejected += 1
    return [Outgoing(to: peer, .error(ErrorReply(code: code, message: message)))]
  }
}
