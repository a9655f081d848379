import TrainingMath
import WireProtocol

/// Pipelining and frames: the window of pushes in flight, refilled as replies
/// come, each push built in the storage of one answered before.
extension WorkerSession {
  /// The next requests: pushes to fill the window, a lease request, or leave.
  func next() -> Step {
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
          order?.draw(own, epoch: epoch)
          epochStarted = true
        }
      }
      // The server tells pushes apart by a window of 256 sequence numbers: keep
      // the pushes in flight within it (pushes redone may be far below the next fresh one).
      // Indexed: `inFlight.first` ran unspecialized in release builds with
      // -enable-testing, and allocated on every push of a pipeline.
      if !inFlight.isEmpty,
        (redo.first?.lowerBound ?? sequence + 1) + UInt64(pushesPerFrame)
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

  /// Pushes in flight, over all frames.
  private var inFlightPushes: Int {
    var count = 0
    for frame in inFlight { count += frame.count }
    return count
  }

  /// Keeps an answered push's storage for a later push.
  func recycle(_ push: GradientPush) {
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

  /// The next push: one the server lacks, again, or the next fresh batch, its
  /// gradient computed at the latest weights (or, on a push the fault strikes,
  /// stale ones, other rows, corrupted values, as the fault says).
  private func makePush() -> GradientPush {
    let batch: Range<Int>
    let pushSequence: UInt64
    var redoing = false
    if let again = redo.first {
      // Only pushes of `freshRuns` are ever queued again, so their rows are known.
      let pushed = pushedBatch(of: again.lowerBound)
      batch = pushed?.rows ?? 0..<0
      if let pushed { redoOrder?.draw(shardRows, epoch: pushed.epoch) }
      redoing = true
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
        workerID: workerID, sequence: 0, computedAtVersion: 0, rows: [],
        gradient: NamedTensors(
          layout: layout, values: [Double](repeating: 0, count: layout.totalCount)))
    push.rows.removeAll(keepingCapacity: true)
    // Shuffled, `batch` is a range of positions in the epoch's order.
    if order == nil {
      for row in batch { push.rows.append(row) }
    } else if redoing {
      redoOrder?.appendRows(at: batch, to: &push.rows)
    } else {
      order?.appendRows(at: batch, to: &push.rows)
    }
    // A fault strikes the pushes its `after` and `rate` choose, and no other.
    let struck = fault.strikes(workerID: workerID, sequence: pushSequence, version: version)
    let point = struck && fault.staleness > 0 ? recentWeights[0] : weights
    if struck && fault.sampleShift != 0 {
      // Other rows than the push names (allocates, but only on a faulty push).
      workspace.load(rows: fault.rowsRead(for: push.rows, datasetRows: dataset.count), of: dataset)
    } else {
      workspace.load(rows: push.rows, of: dataset)
    }
    let batchLoss = objective.gradient(
      weights: point, workspace: workspace, into: &push.gradient.values)
    lossSum += batchLoss
    recentLoss.add(batchLoss)
    if !batchLoss.isFinite && divergence == nil {
      divergence = .diverged(
        version: version, what: "the loss became \(batchLoss.isNaN ? "NaN" : "infinite")")
    }
    batches += 1
    if struck { fault.corrupt(&push.gradient.values) }
    push.sequence = pushSequence
    push.computedAtVersion = version
    return push
  }
}
