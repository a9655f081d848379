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
  private let objective: Objective<Model>
  /// The model's layout, built once (it goes with every push).
  private let layout: [TensorSpec]

  /// Gradients pushed and applied so far.
  public private(set) var pushesApplied: UInt64 = 0
  /// The latest weights version received.
  public private(set) var version: UInt64 = 0
  /// Set when a batch's loss came out NaN or infinite: the worker leaves instead
  /// of pushing its gradient (the server would refuse it), and the loop reports it.
  public private(set) var divergence: RoleError?
  /// The latest weights received.
  public private(set) var weights: [Double] = []
  /// Mean loss of the batches of the last finished epoch (shard mode) or lease.
  public private(set) var epochLoss: Double = 0
  /// The epoch being worked on, 0-based.
  public private(set) var epoch = 0
  /// Times the worker had to rejoin or ask for a new lease.
  public private(set) var resyncs = 0
  /// Pushes pushed again because a restarted server lacked them (fixed shards).
  public private(set) var pushesRedone: UInt64 = 0
  /// Hears what the worker has to say beyond progress: a restarted server
  /// that lacks pushes ("server restarted from version 1000: redoing 145 pushes").
  public var notice: (String) -> Void = { _ in }

  private enum Awaiting: Equatable {
    case joined, weights, lease, left
  }

  /// A frame of pushes sent and not yet acknowledged; its pushes have
  /// consecutive sequence numbers.
  private struct InFlight {
    /// The sequence of its last push, which the reply acknowledges.
    var sequence: UInt64
    /// How many pushes it holds.
    var count: Int
    var message: WireMessage
  }

  private var awaiting: Awaiting = .joined
  /// Rows still to push in this epoch (shard) or lease: always a contiguous range.
  private var remaining: Range<Int> = 0..<0
  /// Whether the current shard epoch has handed out its rows (it ends when they are answered).
  private var epochStarted = false
  /// Whether the worker leaves because its work is done (not on a stop signal):
  /// a server that forgot it meanwhile may lack pushes, so it rejoins first.
  private var leavingDone = false
  /// Sequences of pushes a (restarted) server turned out to lack, ascending,
  /// pushed again (fixed shards) under the same sequence numbers before
  /// `remaining`: the server applies each at most once, and a push's rows
  /// follow from its sequence (`pushedRows(of:)`).
  private var redo: [Range<UInt64>] = []
  /// Where the fresh pushes' batches start in the sequence numbers: push
  /// `sequence` of the run `(first, batch)` holds fresh batch `batch + sequence - first`
  /// (batch g is batch g mod b of the shard, b batches an epoch). A new run
  /// starts only when the server's numbering jumps ahead of the worker's.
  private var freshRuns: [(first: UInt64, batch: Int)] = []
  /// Fresh batches pushed so far (shard mode): each has its own sequence number.
  private var freshBatches = 0
  /// Whether rows are left in this epoch or lease.
  private var hasRows: Bool { !remaining.isEmpty || !redo.isEmpty }
  private var inFlight: [InFlight] = []  // pushes awaiting their replies, oldest first
  /// Answered pushes, to be filled again: in steady state a push is built in the
  /// storage of one answered before, so a step allocates nothing. At most
  /// `pipeline + 1` are kept.
  private var spare: [GradientPush] = []
  private var sequence: UInt64 = 0
  private var recentWeights: [[Double]] = []
  private var lossSum = 0.0
  private var batches = 0
  /// The forward pass's cached activations, reused by every batch.
  private var activations: [Double]

  /// A worker for `model` over `dataset`.
  public init(
    workerID: UInt32, source: WorkSource, dataset: Dataset, model: Model, batchSize: Int = 1,
    pipeline: Int = 1, pushesPerFrame: Int = 1, fault: GradientFault = .none
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
    self.workerID = workerID
    self.source = source
    self.dataset = dataset
    self.batchSize = batchSize
    self.pipeline = pipeline
    self.pushesPerFrame = max(
      1, min(pushesPerFrame, WireCodec.reusableElementLimit / max(1, model.parameterCount)))
    self.fault = fault
    self.objective = Objective(model: model)
    self.layout = model.layout
    self.activations = model.makeActivations()
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
    guard update.parameters.layout == layout else {
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

  private func closeEpoch() {
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
  private func leave() -> Step {
    let message = leaveNow()
    leavingDone = true
    return .send(message)
  }

  /// The rows of this worker's push `sequence`, when it pushed fresh rows under
  /// that number (fixed shards).
  private func pushedRows(of sequence: UInt64) -> Range<Int>? {
    guard let run = freshRuns.last(where: { $0.first <= sequence }), sequence <= self.sequence
    else { return nil }
    let batch = run.batch + Int(sequence - run.first)
    guard batch < freshBatches else { return nil }
    let own = shardRows
    let perEpoch = (own.count + batchSize - 1) / batchSize
    let start = own.lowerBound + (batch % perEpoch) * batchSize
    return start..<min(start + batchSize, own.upperBound)
  }

  /// After a rejoin (fixed shards): every push of this worker that the server
  /// lacks, by `applied` (its highest applied sequence and the 256 below), is
  /// queued to be pushed again, recomputed at the current weights, under its
  /// own sequence number. Pushes are counted as applied only once the server has them.
  private func findLackingPushes(_ applied: SequenceWindow, serverVersion: UInt64) {
    var lacking: [Range<UInt64>] = []
    var count: UInt64 = 0
    for (index, run) in freshRuns.enumerated() {
      let end =
        index + 1 < freshRuns.count
        ? run.first + UInt64(freshRuns[index + 1].batch - run.batch)
        : run.first + UInt64(freshBatches - run.batch)
      // At or below the highest only the window can be missing; the rest was
      // applied before the highest was pushed (a pipeline is at most the window).
      let floor =
        applied.highest > SequenceWindow.width ? applied.highest - SequenceWindow.width : 1
      var candidate = max(run.first, floor)
      while candidate < end {
        if applied.verdict(for: candidate) == .new {
          if let last = lacking.last, last.upperBound == candidate {
            lacking[lacking.count - 1] = last.lowerBound..<(candidate + 1)
          } else {
            lacking.append(candidate..<(candidate + 1))
          }
          count += 1
        }
        // Past the highest, everything is missing: take the rest at once.
        if candidate > applied.highest {
          let rest = candidate + 1..<end
          if !rest.isEmpty {
            lacking[lacking.count - 1] = lacking[lacking.count - 1].lowerBound..<end
            count += UInt64(rest.count)
          }
          break
        }
        candidate += 1
      }
    }
    // Pushes the worker was told were applied and the server no longer has:
    // the lacking ones that were neither in flight nor already waiting to be redone.
    var unanswered = redo
    for frame in inFlight {
      unanswered.append((frame.sequence + 1 - UInt64(frame.count))..<(frame.sequence + 1))
    }
    var lost = count
    for range in lacking {
      for other in unanswered {
        let overlap = range.clamped(to: other)
        lost -= UInt64(overlap.count)
      }
    }
    pushesApplied = UInt64(freshBatches) - count
    redo = lacking
    guard count > 0 else { return }
    pushesRedone += count
    if lost > 0 {
      notice(
        "server restarted from version \(serverVersion): redoing \(count) pushes (\(lost) of them had been acknowledged)"
      )
    } else {
      notice(
        "rejoined the server at version \(serverVersion): pushing again \(count) pushes it never applied"
      )
    }
  }

  /// The next requests: pushes to fill the window, a lease request, or leave.
  private func next() -> Step {
    // One push in steady state; an array only when a window is filled.
    var first: WireMessage?
    var more: [WireMessage] = []
    let alreadySent = inFlight.count
    while inFlightPushes < pipeline {
      if !hasRows {
        // An epoch, shard or lease ends only once its last pushes are answered.
        guard inFlight.isEmpty else { break }
        switch source {
        case .leased:
          awaiting = .lease
          return .send(.leaseRequest(workerID: workerID))
        case .shard(let shard, let epochs):
          if epochStarted {
            closeEpoch()
            epoch += 1
            epochStarted = false
          }
          let own = shard.rows(of: dataset.count)
          guard epoch < epochs, !own.isEmpty else { return leave() }
          remaining = own
          epochStarted = true
        }
      }
      // The server tells pushes apart by a window of 256 sequence numbers: keep
      // the pushes in flight within it (pushes redone may be far below the next fresh one).
      // Subscripts, not `first`: `first` of this private type's array ran
      // unspecialized and allocated on every push.
      if !inFlight.isEmpty,
        (redo.isEmpty ? sequence + 1 : redo[0].lowerBound) + UInt64(pushesPerFrame)
          > inFlight[0].sequence - UInt64(inFlight[0].count) + 1 + SequenceWindow.width
      {
        break
      }
      // With several pushes per frame, wait until a whole frame fits.
      let room = pipeline - inFlightPushes
      if room < pushesPerFrame, !inFlight.isEmpty { break }
      let frame = makeFrame(of: min(room, pushesPerFrame))
      if divergence != nil {
        inFlight.removeSubrange(alreadySent...)  // built in this call, never sent
        return leave()
      }
      if first == nil { first = frame } else { more.append(frame) }
    }
    awaiting = .weights
    guard let first else { return .sendEach([]) }
    return more.isEmpty ? .send(first) : .sendEach([first] + more)
  }

  /// Computes the gradient of the next batch at the latest weights (or stale
  /// ones, with the stale fault) and records it as in flight.
  /// Pushes in flight, over all frames.
  private var inFlightPushes: Int {
    var count = 0
    for frame in inFlight { count += frame.count }
    return count
  }

  /// Keeps an answered push's storage for a later push.
  private func recycle(_ push: GradientPush) {
    if spare.count <= pipeline { spare.append(push) }
  }

  /// Up to `limit` pushes of the next batches (fewer at the end of the rows), as
  /// one frame, recorded as in flight.
  private func makeFrame(of limit: Int) -> WireMessage {
    // A frame holds fresh consecutive pushes only: pushes redone go one at a time.
    let redoing = !redo.isEmpty
    let first = makePush()
    let message: WireMessage
    if limit == 1 || redoing || remaining.isEmpty {
      message = .push(first)
    } else {
      var pushes: [GradientPush] = []
      pushes.reserveCapacity(limit)
      pushes.append(first)
      while pushes.count < limit, !remaining.isEmpty {
        pushes.append(makePush())
      }
      message = .pushes(pushes)
    }
    inFlight.append(
      InFlight(
        sequence: first.sequence + UInt64(message.pushCount - 1), count: message.pushCount,
        message: message))
    return message
  }

  /// The next push: one the server lacks, again, or the next fresh batch.
  private func makePush() -> GradientPush {
    let batch: Range<Int>
    let pushSequence: UInt64
    if let again = redo.first {
      // Only pushes of `freshRuns` are ever queued again, so their rows are known.
      batch = pushedRows(of: again.lowerBound) ?? 0..<0
      pushSequence = again.lowerBound
      if again.count == 1 {
        redo.removeFirst()
      } else {
        redo[0] = (again.lowerBound + 1)..<again.upperBound
      }
    } else {
      batch = remaining.prefix(batchSize)
      remaining = batch.upperBound..<remaining.upperBound
      sequence += 1
      pushSequence = sequence
      if case .shard = source {
        // A new run of sequence numbers only when the numbering jumped.
        let continues =
          freshRuns.last.map { $0.batch + Int(sequence - $0.first) == freshBatches } ?? false
        if !continues { freshRuns.append((sequence, freshBatches)) }
        freshBatches += 1
      }
    }
    // The oldest spare: the newest frame may still be held by the loop as its last request.
    var push =
      spare.count > pushesPerFrame
      ? spare.removeFirst()
      : GradientPush(
        workerID: workerID, sequence: 0, computedAtVersion: 0, samples: [],
        gradient: NamedTensors(
          layout: layout, values: [Double](repeating: 0, count: layout.totalCount)))
    push.samples.removeAll(keepingCapacity: true)
    for row in batch { push.samples.append(dataset.samples[row]) }
    let point = fault.staleness > 0 ? recentWeights[0] : weights
    let batchLoss = objective.gradient(
      weights: point, samples: push.samples, into: &push.gradient.values,
      activations: &activations)
    lossSum += batchLoss
    if !batchLoss.isFinite && divergence == nil {
      divergence = .diverged(
        version: version, what: "the loss became \(batchLoss.isNaN ? "NaN" : "infinite")")
    }
    batches += 1
    fault.corrupt(&push.gradient.values)
    push.sequence = pushSequence
    push.computedAtVersion = version
    return push
  }
}
