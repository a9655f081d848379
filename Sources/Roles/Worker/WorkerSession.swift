import TrainingMath
import WireProtocol

/// Where a worker's rows come from.
public enum WorkSource: Equatable, Sendable {
  /// A fixed shard of the data, for a number of epochs the worker decides.
  case shard(Shard, epochs: Int)
  /// Rows leased by the server, which decides the epochs; survives worker deaths.
  case leased
}

/// A worker as a state machine: it joins, then for each batch runs forward and
/// cached backward at the weights it last received, pushes the gradient and
/// waits for fresh weights; when there is no more work it leaves. Replies are
/// matched to the request they answer, so the loop may resend a request that
/// timed out and late duplicates are ignored. When the server has forgotten
/// the worker (it restarted, or took the worker for dead) the worker rejoins,
/// and when its lease was taken back it asks for a new one.
///
/// Its parts: the window of pushes and frames in `WorkerSession+Pushes.swift`,
/// redoing pushes after a server restart in `WorkerSession+Redo.swift`, and the
/// requests in time (resend, reply timeout, stop grace) in `WorkerSession+Requests.swift`.
public final class WorkerSession<Model: DifferentiableModel> {
  /// What the worker does next.
  public enum Step: Equatable {
    /// Send this message and wait for its reply.
    case send(WireMessage)
    /// Wait this long, then send the message.
    case sendAfter(milliseconds: Int, WireMessage)
    /// Send each of these (a window of pushes), then wait for their replies.
    /// Empty: nothing to send, keep waiting for replies already owed.
    case sendEach([WireMessage])
    /// The reply answered an earlier request; keep waiting.
    case ignore
    /// The server accepted the leave; the worker is done.
    case finished
  }

  /// The worker's id.
  public let workerID: UInt32
  /// Where rows come from.
  public let source: WorkSource
  /// The full dataset (every worker reads the same).
  public let dataset: Dataset
  /// Samples per push.
  public let batchSize: Int
  /// Pushes kept in flight at most (async servers only; 1 waits for each reply).
  public let pipeline: Int
  /// Pushes sent together in one frame (async, fixed shards; 1 sends each alone):
  /// one message and one reply per frame instead of per push. Frames exist to
  /// spread the per-message cost of small pushes, so a frame holds at most
  /// 2^17 gradient values (1 MiB): large models push one at a time, and a frame
  /// never nears the server's maximum message size.
  public let pushesPerFrame: Int
  /// The injected fault (normally none).
  public let fault: GradientFault
  /// The seed of each epoch's order of the shard's rows (fixed shards), or nil
  /// to visit them in file order every epoch.
  public let shuffleSeed: UInt64?
  let objective: Objective<Model>
  /// The model's layout, built once (it goes with every push).
  let layout: [TensorSpec]

  /// Gradients pushed and applied so far.
  public internal(set) var pushesApplied: UInt64 = 0
  /// The latest weights version received.
  public private(set) var version: UInt64 = 0
  /// Set when a batch's loss came out NaN or infinite: the worker leaves instead
  /// of pushing its gradient (the server would refuse it), and the loop reports it.
  public internal(set) var divergence: RoleError?
  /// The latest weights received.
  public private(set) var weights: [Double] = []
  /// Mean loss of the batches of the last finished epoch (shard mode) or lease.
  public private(set) var epochLoss: Double = 0
  /// The epoch being worked on, 0-based.
  public internal(set) var epoch = 0
  /// Times the worker had to rejoin or ask for a new lease.
  public private(set) var resyncs = 0
  /// Pushes pushed again because a restarted server lacked them (fixed shards).
  public internal(set) var pushesRedone: UInt64 = 0
  /// Hears what the worker has to say beyond progress: a restarted server
  /// that lacks pushes ("server restarted from version 1000: redoing 145 pushes").
  public var notice: (String) -> Void = { _ in }
  /// When to resend, give up, leave on a stop and send a delayed request; set by
  /// `start(now:timing:server:)` (`WorkerSession+Requests.swift`).
  var requests: RequestPolicy?

  enum Awaiting: Equatable {
    case joined, weights, lease, left
  }

  /// A frame of pushes sent and not yet acknowledged; its pushes have
  /// consecutive sequence numbers.
  struct InFlight {
    /// The sequence of its last push, which the reply acknowledges.
    var sequence: UInt64
    /// How many pushes it holds.
    var count: Int
    var message: WireMessage
  }

  var awaiting: Awaiting = .joined
  /// Rows still to push in this epoch (shard) or lease: always a contiguous range
  /// (shuffled, positions in `order`, counted from the shard's first row).
  var remaining: Range<Int> = 0..<0
  /// Whether the current shard epoch has handed out its rows (it ends when they are answered).
  var epochStarted = false
  /// Whether the worker leaves because its work is done (not on a stop signal):
  /// a server that forgot it meanwhile may lack pushes, so it rejoins first.
  private var leavingDone = false
  /// Sequences of pushes a (restarted) server turned out to lack, ascending,
  /// pushed again (fixed shards) under the same sequence numbers before
  /// `remaining`: the server applies each at most once, and a push's rows
  /// follow from its sequence (`pushedBatch(of:)`).
  var redo: [Range<UInt64>] = []
  /// Where the fresh pushes' batches start in the sequence numbers: push
  /// `sequence` of the run `(first, batch)` holds fresh batch `batch + sequence - first`
  /// (batch g is batch g mod b of the shard, b batches an epoch). A new run
  /// starts only when the server's numbering jumps ahead of the worker's.
  var freshRuns: [(first: UInt64, batch: Int)] = []
  /// Fresh batches pushed so far (shard mode): each has its own sequence number.
  var freshBatches = 0
  /// Whether rows are left in this epoch or lease.
  var hasRows: Bool { !remaining.isEmpty || !redo.isEmpty }
  var inFlight: [InFlight] = []  // pushes awaiting their replies, oldest first
  /// Answered pushes, to be filled again: in steady state a push is built in the
  /// storage of one answered before, so a step allocates nothing. At most
  /// `pipeline + 1` are kept.
  var spare: [GradientPush] = []
  var sequence: UInt64 = 0
  var recentWeights: [[Double]] = []
  var lossSum = 0.0
  var batches = 0
  /// The loss of the batches since the last `drainRecentLoss()`.
  var recentLoss = RecentLoss()
  /// The batch's inputs and the forward pass's cached activations, reused by every batch.
  let workspace: BatchWorkspace
  /// This epoch's order of the shard's rows, with `shuffleSeed`: fresh pushes
  /// take their rows from it (`remaining` then counts positions in the order).
  var order: RowOrder?
  /// An earlier epoch's order, drawn again for pushes redone after a server restart.
  var redoOrder: RowOrder?

  /// A worker for `model` over `dataset`.
  public init(
    workerID: UInt32, source: WorkSource, dataset: Dataset, model: Model, batchSize: Int = 1,
    pipeline: Int = 1, pushesPerFrame: Int = 1, fault: GradientFault = .none,
    shuffleSeed: UInt64? = nil
  ) throws(RoleError) {
    guard (1...SequenceWindow.width).contains(UInt64(max(pipeline, 0))) else {
      throw .invalidArgument("pipeline must be 1...\(SequenceWindow.width), got \(pipeline)")
    }
    guard (1...pipeline).contains(pushesPerFrame) else {
      throw .invalidArgument(
        "pushes per frame must be 1...\(pipeline) (the pipeline), got \(pushesPerFrame)")
    }
    if pipeline > 1, case .leased = source {
      throw .invalidArgument("a pipeline needs a fixed shard: leased rows are pushed one at a time")
    }
    if shuffleSeed != nil, case .leased = source {
      throw .invalidArgument(
        "shuffling needs a fixed shard: leased rows come in the order the server leases them")
    }
    if case .shard(_, let epochs) = source, epochs < 0 {
      throw .invalidArgument("epochs must be >= 0, got \(epochs)")
    }
    guard batchSize >= 1 else {
      throw .invalidArgument("batch size must be >= 1, got \(batchSize)")
    }
    if let bad = fault.flipped.first(where: { $0 >= model.parameterCount }) {
      throw .invalidArgument(
        "fault flip=\(bad) names a coordinate the model does not have (it has \(model.parameterCount))"
      )
    }
    if let bad = fault.bitFlips.first(where: { $0.coordinate >= model.parameterCount }) {
      throw .invalidArgument(
        "fault bitflip=\(bad.coordinate):\(bad.bit) names a coordinate the model does not have (it has \(model.parameterCount))"
      )
    }
    self.workerID = workerID
    self.source = source
    self.dataset = dataset
    self.batchSize = batchSize
    self.pipeline = pipeline
    self.pushesPerFrame = max(
      1, min(pushesPerFrame, WireCodec.reusableElementLimit / max(1, model.parameterCount)))
    self.fault = fault
    self.shuffleSeed = shuffleSeed
    if let shuffleSeed, case .shard(let shard, _) = source {
      order = RowOrder(seed: shuffleSeed, stream: UInt64(shard.index))
      redoOrder = order
    }
    self.objective = Objective(model: model)
    self.layout = model.layout
    self.workspace = model.makeWorkspace(batchCapacity: batchSize)
  }

  /// The rows of this worker's shard (empty in leased mode).
  public var shardRows: Range<Int> {
    guard case .shard(let shard, _) = source else { return 0..<0 }
    return shard.rows(of: dataset.count)
  }

  /// The model as the server knows it.
  public var modelDescriptor: ModelDescriptor {
    ModelDescriptor(name: objective.model.name, layout: layout)
  }

  /// The first message: join.
  public func start() -> WireMessage {
    awaiting = .joined
    let shard: Shard
    if case .shard(let own, _) = source {
      shard = own
    } else {
      shard = Shard.whole
    }
    return .join(
      Join(
        workerID: workerID, shard: shard, model: modelDescriptor,
        dataset: DatasetIdentity(rows: UInt64(dataset.count), fingerprint: dataset.fingerprint)))
  }

  /// Feeds a message from the server and returns what to do next.
  public func receive(_ reply: WireMessage) throws(RoleError) -> Step {
    switch (reply, awaiting) {
    case (.weights(let update), .joined):
      try take(update)
      // The server tells a (re)joining worker what it has applied of its pushes:
      // the highest and the 256 below it (a push may have been overtaken by a
      // later one and still be missing).
      let applied = SequenceWindow(
        highest: update.acknowledgedSequence, below: update.appliedBelow)
      if case .shard = source {
        findLackingPushes(applied, serverVersion: update.version)
      } else {
        for push in inFlight where applied.verdict(for: push.sequence) != .new {
          pushesApplied += UInt64(push.count)
        }
        remaining = 0..<0  // a restarted server leases afresh
        redo = []
      }
      inFlight = []
      sequence = max(sequence, update.acknowledgedSequence)
      return next()
    case (.weights(let update), .weights):
      // A plain loop: `firstIndex(where:)` over this private type ran unspecialized
      // and allocated on every reply.
      var index = 0
      while index < inFlight.count, inFlight[index].sequence != update.acknowledgedSequence {
        index += 1
      }
      guard index < inFlight.count else { return .ignore }  // a late duplicate
      let answered = inFlight.remove(at: index)
      pushesApplied += UInt64(answered.count)
      switch answered.message {
      case .push(let push): recycle(push)
      case .pushes(let pushes): for push in pushes { recycle(push) }
      default: break
      }
      // Replies to a window may overtake each other after a reconnect; keep the newest weights.
      if update.version >= version || inFlight.isEmpty { try take(update) }
      return next()
    case (.lease(let lease), .lease):
      guard lease.rows.upperBound <= dataset.count else {
        throw .unexpectedReply(
          expected: "a lease within the \(dataset.count) rows", got: "rows \(lease.rows)")
      }
      try take(lease.weights)
      if Int(lease.epoch) != epoch, batches > 0 { closeEpoch() }
      epoch = Int(lease.epoch)
      remaining = lease.rows
      return next()
    case (.noLease(let answer), .lease):
      if answer.finished { return leave() }
      return .sendAfter(
        milliseconds: Int(answer.retryAfterMilliseconds), .leaseRequest(workerID: workerID))
    case (.left(let id), .left) where id == workerID:
      return .finished
    case (.error(let error), _):
      switch error.code {
      case .notJoined where awaiting != .left || leavingDone:
        // The server restarted or took us for dead: join again (also when
        // leaving after the work: a restarted server may lack pushes to redo).
        resyncs += 1
        leavingDone = false
        if case .leased = source { remaining = 0..<0 }
        return .send(start())
      case .notJoined:
        return .finished  // leaving, and the server has already forgotten us
      case .leaseLost:
        resyncs += 1
        remaining = 0..<0
        redo = []
        inFlight = []
        awaiting = .lease
        return .send(.leaseRequest(workerID: workerID))
      case .nonFinite:
        // Our gradient overflowed: the weights it was computed at had diverged.
        throw .diverged(
          version: version, what: "the gradient became NaN or infinite (the server refused it)")
      default:
        throw .refused(error)
      }
    case (.weights, _), (.lease, _), (.noLease, _), (.left, _):
      return .ignore  // a late answer to a request already answered
    default:
      throw .unexpectedReply(expected: "\(awaiting)", got: "\(reply.type)")
    }
  }

  private func take(_ update: WeightsReply) throws(RoleError) {
    guard update.parameters.layout == layout || update.parameters.layout.hasSameStorage(as: layout)
    else {
      throw .unexpectedReply(
        expected: "weights in layout \(layout)",
        got: "layout \(update.parameters.layout)")
    }
    version = update.version
    let values = update.parameters.values
    if weights.count == values.count && values.count <= WireCodec.reusableElementLimit {
      // Into the worker's own buffer: the reply's storage goes back to the link
      // for the next one. Large weights are adopted instead, not held twice.
      weights.withUnsafeMutableBufferPointer { target in
        values.withUnsafeBufferPointer { source in
          target.baseAddress!.update(from: source.baseAddress!, count: source.count)
        }
      }
    } else {
      weights = values
    }
    if fault.staleness > 0 {
      recentWeights.append(weights)
      if recentWeights.count > fault.staleness + 1 { recentWeights.removeFirst() }
    }
  }

  /// The mean loss of the batches computed since the last call (nil when none was), for
  /// the metrics' training loss.
  public func drainRecentLoss() -> Double? { recentLoss.drain() }

  func closeEpoch() {
    epochLoss = batches > 0 ? lossSum / Double(batches) : 0
    lossSum = 0
    batches = 0
  }

  /// Leaves the run now (on a stop signal): returns the message to send.
  public func leaveNow() -> WireMessage {
    awaiting = .left
    leavingDone = false
    remaining = 0..<0
    redo = []
    return .leave(workerID: workerID)
  }

  /// The pushes sent and not yet acknowledged, to resend when answers are late.
  public var unacknowledgedPushes: [WireMessage] { inFlight.map(\.message) }

  /// Leaves because the work is done.
  func leave() -> Step {
    let message = leaveNow()
    leavingDone = true
    return .send(message)
  }
}
