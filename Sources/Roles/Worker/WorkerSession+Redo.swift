import TrainingMath
import WireProtocol

/// Redoing pushes after a server restart (fixed shards): a push's rows follow
/// from its sequence number, so what a restarted server lacks is pushed again,
/// recomputed at the current weights, under the same numbers.
extension WorkerSession {
  /// The rows of this worker's push `sequence`, when it pushed fresh rows under
  /// that number (fixed shards), and the epoch it belonged to. With shuffling
  /// the rows are positions in that epoch's `RowOrder` (offset by the shard's
  /// first row): the push is redone with the same rows as the first time.
  func pushedBatch(of sequence: UInt64) -> (epoch: Int, rows: Range<Int>)? {
    guard let run = freshRuns.last(where: { $0.first <= sequence }), sequence <= self.sequence
    else { return nil }
    let batch = run.batch + Int(sequence - run.first)
    guard batch < freshBatches else { return nil }
    let own = shardRows
    let perEpoch = (own.count + batchSize - 1) / batchSize
    let start = own.lowerBound + (batch % perEpoch) * batchSize
    return (batch / perEpoch, start..<min(start + batchSize, own.upperBound))
  }

  /// After a rejoin (fixed shards): every push of this worker that the server
  /// lacks, by `applied` (its highest applied sequence and the 256 below), is
  /// queued to be pushed again, recomputed at the current weights, under its
  /// own sequence number. Pushes are counted as applied only once the server has them.
  func findLackingPushes(_ applied: SequenceWindow, serverVersion: UInt64) {
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
}
