import TrainingMath
import WireProtocol

/// A worker of a sparse model as a state machine: it joins, then for each batch
/// of its shard pulls the rows of the keys the batch touches, computes the
/// gradient of the batch's mean log loss with respect to those rows, and pushes
/// it for the same keys, naming the list its pull asked the server to keep
/// (key caching: the keys cross the wire once per batch). Up to `pipeline`
/// batches are in flight (bounded delay: batch s + pipeline is pulled only once
/// batch s is acknowledged). A request not answered within the retry interval
/// is sent again (a pull is harmless to repeat; a push is applied at most once);
/// when its work is done it leaves. No sockets: the loop moves the messages.
public final class SparseWorkerSession {
  /// The worker's id.
  public let workerID: UInt32
  /// Its fixed shard of the data.
  public let shard: Shard
  /// Passes over the shard.
  public let epochs: Int
  /// The data (every worker reads the same file).
  public let dataset: SparseDataset
  /// The model.
  public let model: SparseModelSpec
  /// Rows per batch.
  public let batchSize: Int
  /// Batches in flight at most.
  public let pipeline: Int
  /// The seed of each epoch's row order, or nil for file order.
  public let shuffleSeed: UInt64?
  /// The injected fault (normally none).
  public let fault: GradientFault
  /// The join this worker sends, with the model's row shape and the data's
  /// identity (its fingerprint read once: a pass over every nonzero).
  public let join: WireMessage

  /// Batches pushed and acknowledged.
  public private(set) var pushesApplied: UInt64 = 0
  /// The newest server version seen.
  public private(set) var version: UInt64 = 0
  /// The epoch being worked on, 0-based.
  public private(set) var epoch = 0
  /// Mean loss of the last finished epoch's batches.
  public private(set) var epochLoss: Double = 0
  /// Keys pulled (each batch's keys, once), and examples (rows) pushed.
  public private(set) var keysPulled: UInt64 = 0
  public private(set) var examples: UInt64 = 0
  /// Set when a batch's loss came out NaN or infinite: the worker leaves.
  public private(set) var divergence: RoleError?

  private struct Batch {
    var sequence: UInt64
    var batch: SparseBatch
    var cacheID: UInt32
    /// The request awaiting an answer: the pull, then the push.
    var request: WireMessage
    var pushed: Bool
  }

  private enum Phase { case joining, working, leaving, finished }
  private var phase = Phase.joining
  private var requests: RequestPolicy?
  private var inFlight: [Batch] = []
  private var nextSequence: UInt64 = 1
  /// Positions (within the shard's rows) of the current epoch's order still to batch.
  private var order: [Int] = []
  private var cursor = 0
  private var lossSum = 0.0
  private var lossBatches = 0
  /// The loss of the batches since the last `drainRecentLoss()`.
  private var recentLoss = RecentLoss()
  private var gradient: [Double] = []

  /// A worker that trains `model` on shard `shard` of `dataset` for `epochs` passes.
  public init(
    workerID: UInt32, shard: Shard, epochs: Int, dataset: SparseDataset, model: SparseModelSpec,
    batchSize: Int, pipeline: Int, shuffleSeed: UInt64?, fault: GradientFault = .none
  ) {
    self.workerID = workerID
    self.shard = shard
    self.epochs = epochs
    self.dataset = dataset
    self.model = model
    self.batchSize = max(1, batchSize)
    self.pipeline = max(1, pipeline)
    self.shuffleSeed = shuffleSeed
    self.fault = fault
    join = .join(
      Join(
        workerID: workerID, shard: shard,
        model: ModelDescriptor(
          name: model.wireName,
          layout: [TensorSpec(name: "row", count: model.rowWidth, elementType: .float64)]),
        dataset: DatasetIdentity(rows: UInt64(dataset.count), fingerprint: dataset.fingerprint)))
  }

  /// Starts the session at `now`: the join to send.
  public func start(now: UInt64, timing: RequestPolicy.Timing, server: String) -> WireMessage {
    requests = RequestPolicy(timing: timing, server: server, request: join, now: now)
    return join
  }

  /// Whether a stop has been requested.
  public var isStopping: Bool { requests?.isStopping ?? false }
  /// Whether the worker has left.
  public var isFinished: Bool { phase == .finished }

  /// What to do at `now` apart from taking messages: resend what is unanswered,
  /// leave on a stop, say what a long wait waits for, or wait.
  public func nextAction(now: UInt64, stop: Bool) throws(RoleError) -> RequestPolicy.Action {
    switch try requests!.due(now: now, stop: stop) {
    case .wait(let until): return .wait(until: until)
    case .notice(let notice): return .notice(notice)
    case .send(let message):
      requests!.sent(message, now: now)
      return .send([message])
    case .leave:
      return .send(leave(now: now))
    case .resend:
      requests!.resent(now: now)
      switch phase {
      case .joining: return .send([join])
      case .leaving, .finished: return .send([.leave(workerID: workerID)])
      case .working:
        if stop, requests!.leavesOnStop(stop: true, now: now) { return .send(leave(now: now)) }
        return .send(inFlight.map(\.request))
      }
    }
  }

  /// `line` unless it was the last thing said of a wait.
  public func unsaid(_ line: String) -> String? { requests!.unsaid(line) }

  /// The mean loss of the batches computed since the last call (nil when none was), for
  /// the metrics' training loss.
  public func drainRecentLoss() -> Double? { recentLoss.drain() }

  /// Whether progress is due to be reported.
  public func isProgressReportDue(now: UInt64) -> Bool { requests!.isProgressReportDue(now: now) }

  /// Takes a message from the server; returns what to send.
  public func receive(_ message: WireMessage, now: UInt64, stop: Bool) throws(RoleError)
    -> [WireMessage]
  {
    switch (phase, message) {
    case (.joining, .weights(let reply)):
      requests!.received(now: now, useful: true)
      version = max(version, reply.version)
      // A worker that rejoins continues its numbering after the last push the server has.
      nextSequence = reply.acknowledgedSequence + 1
      phase = .working
      startEpoch()
      return fill(now: now, stop: stop)
    case (.working, .sparseRows(let rows)):
      guard let index = inFlight.firstIndex(where: { $0.sequence == rows.sequence && !$0.pushed })
      else {
        requests!.received(now: now, useful: false)
        return []
      }
      requests!.received(now: now, useful: true)
      version = max(version, rows.version)
      guard rows.values.count == inFlight[index].batch.keys.count * model.rowWidth else {
        throw .unexpectedReply(
          expected: "\(inFlight[index].batch.keys.count) rows of \(model.rowWidth)",
          got: "\(rows.values.count) values")
      }
      return try push(index, rows: rows, now: now)
    case (.working, .sparseAck(let ack)):
      guard let index = inFlight.firstIndex(where: { $0.sequence == ack.sequence && $0.pushed })
      else {
        requests!.received(now: now, useful: false)
        return []
      }
      requests!.received(now: now, useful: true)
      version = max(version, ack.version)
      inFlight.remove(at: index)
      pushesApplied += 1
      return fill(now: now, stop: stop)
    case (.working, .error(let reply)) where reply.code == .unknownKeyList:
      // The server no longer keeps a list a push names: push those batches with their keys.
      requests!.received(now: now, useful: true)
      for index in inFlight.indices where inFlight[index].pushed {
        if case .sparsePush(var push) = inFlight[index].request {
          push.keys = .keys(inFlight[index].batch.keys, cacheAs: 0)
          inFlight[index].request = .sparsePush(push)
        }
      }
      return inFlight.filter(\.pushed).map(\.request)
    case (_, .error(let reply)):
      throw .refused(reply)
    case (.leaving, .left):
      requests!.received(now: now, useful: true)
      phase = .finished
      return []
    default:
      requests!.received(now: now, useful: false)
      return []
    }
  }

  private func push(_ index: Int, rows: SparseRows, now: UInt64) throws(RoleError) -> [WireMessage]
  {
    let batch = inFlight[index].batch
    let loss = model.lossAndGradient(
      of: batch, data: dataset, values: rows.values, gradient: &gradient)
    guard loss.isFinite, gradient.allSatisfy(\.isFinite) else {
      divergence = .diverged(
        version: rows.version,
        what: "worker \(workerID)'s batch \(inFlight[index].sequence) has loss \(loss)")
      return leave(now: now)
    }
    lossSum += loss
    lossBatches += 1
    recentLoss.add(loss)
    var pushed = gradient
    if fault.strikes(workerID: workerID, sequence: inFlight[index].sequence, version: rows.version)
    {
      fault.corrupt(&pushed)
    }
    let message = WireMessage.sparsePush(
      SparsePush(
        workerID: workerID, sequence: inFlight[index].sequence, computedAtVersion: rows.version,
        rows: batch.rows,
        keys: .cached(id: inFlight[index].cacheID, count: UInt32(batch.keys.count)),
        gradients: pushed))
    inFlight[index].request = message
    inFlight[index].pushed = true
    examples += UInt64(batch.rows.count)
    requests!.sent(message, now: now)
    return [message]
  }

  /// Pulls new batches while there is room in the pipeline and rows left; leaves when all is done.
  private func fill(now: UInt64, stop: Bool) -> [WireMessage] {
    if stop || divergence != nil {
      return inFlight.isEmpty ? leave(now: now) : []
    }
    var messages: [WireMessage] = []
    while inFlight.count < pipeline, let rows = nextRows() {
      let sequence = nextSequence
      nextSequence += 1
      let batch = SparseBatch(rows: rows, data: dataset, model: model)
      let cacheID =
        UInt32(truncatingIfNeeded: sequence) == 0 ? 1 : UInt32(truncatingIfNeeded: sequence)
      keysPulled += UInt64(batch.keys.count)
      let pull = WireMessage.sparsePull(
        SparsePull(
          workerID: workerID, sequence: sequence, keys: .keys(batch.keys, cacheAs: cacheID)))
      inFlight.append(
        Batch(sequence: sequence, batch: batch, cacheID: cacheID, request: pull, pushed: false))
      messages.append(pull)
      requests!.sent(pull, now: now)
    }
    if inFlight.isEmpty { return leave(now: now) }
    return messages
  }

  private func leave(now: UInt64) -> [WireMessage] {
    guard phase != .leaving, phase != .finished else { return [] }
    phase = .leaving
    inFlight.removeAll()
    let message = WireMessage.leave(workerID: workerID)
    requests!.sent(message, now: now)
    return [message]
  }

  /// The next batch's dataset rows, moving to the next epoch when one runs out; nil when done.
  private func nextRows() -> [Int]? {
    while cursor >= order.count {
      guard epoch < epochs else { return nil }
      finishEpoch()
      guard epoch < epochs else { return nil }
      startEpoch()
    }
    let end = min(order.count, cursor + batchSize)
    let first = shard.rows(of: dataset.count).lowerBound
    defer { cursor = end }
    return order[cursor..<end].map { first + $0 }
  }

  private func startEpoch() {
    let count = shard.rows(of: dataset.count).count
    order = Array(0..<count)
    if let shuffleSeed {
      var generator = SplitMix64(seed: shuffleSeed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
      order.shuffle(using: &generator)
    }
    cursor = 0
  }

  private func finishEpoch() {
    epochLoss = lossBatches > 0 ? lossSum / Double(lossBatches) : epochLoss
    lossSum = 0
    lossBatches = 0
    epoch += 1
  }
}
