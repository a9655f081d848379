import TrainingMath
import WireProtocol

/// Who trains with a `ParameterServer`: the joined workers with their peer,
/// shard and liveness, the workers that ever joined, left or were dropped, the
/// exactly-once table (each worker's applied push sequences, kept after it
/// leaves), and the data set every worker must read. It answers no message:
/// the server asks it and turns its verdicts into replies.
///
/// A class, so that the server's every push updates it in place.
final class Membership {
  /// A joined worker. A class, so that updating a field on every push is a
  /// dictionary lookup, not a `modify` access (whose coroutine frame for a value
  /// this size is heap-allocated).
  final class Worker {
    let peer: PeerID
    let shard: Shard
    var lastSeen: UInt64
    var pushesApplied: UInt64 = 0
    var lastStaleness: UInt64 = 0

    init(peer: PeerID, shard: Shard, lastSeen: UInt64) {
      self.peer = peer
      self.shard = shard
      self.lastSeen = lastSeen
    }
  }

  /// The outcome of a join.
  enum Admission: Equatable {
    /// A new worker, or one rejoining (after a restart of either side).
    case admitted
    /// A retried join of a worker joined from the same peer: answer it again.
    case retried
    /// Refused, with the code and the reason to answer with.
    case refused(ErrorCode, String)
  }

  private(set) var workers: [UInt32: Worker] = [:]
  private(set) var everJoined: Set<UInt32> = []
  /// Workers that left, and workers dropped as silent.
  var workersLeft: UInt32 = 0
  var workersDead: UInt32 = 0
  /// Last applied push per worker id; kept after a worker leaves, so that a
  /// retry or a restarted worker is never applied twice.
  private(set) var sequences: [UInt32: SequenceWindow] = [:]
  private(set) var dataset: DatasetIdentity?

  /// Takes the exactly-once table and the data set from `checkpoint`; no
  /// worker is joined: workers rejoin.
  func restore(from checkpoint: ServerCheckpoint) {
    for entry in checkpoint.sequences {
      sequences[entry.workerID] = SequenceWindow(highest: entry.sequence, below: entry.recent)
    }
    dataset = checkpoint.dataset
  }

  /// The pushes of `workerID` applied so far.
  func window(of workerID: UInt32) -> SequenceWindow {
    sequences[workerID] ?? SequenceWindow()
  }

  /// Whether `workerID` is joined from `peer`.
  func isJoined(_ workerID: UInt32, from peer: PeerID) -> Bool {
    workers[workerID]?.peer == peer
  }

  /// Records that `workerID` spoke from `peer`; false if it is not joined from there.
  func seen(_ workerID: UInt32, from peer: PeerID, now: UInt64) -> Bool {
    guard workers[workerID]?.peer == peer else { return false }
    workers[workerID]!.lastSeen = now
    return true
  }

  /// Joins the worker of `join` from `peer` at `now`, unless its id is joined
  /// from another peer, it reads another data set, or (when the server does
  /// not lease rows, `leased` false) it splits the data into another number of
  /// shards than the joined workers.
  func admit(_ join: Join, from peer: PeerID, now: UInt64, leased: Bool) -> Admission {
    if let existing = workers[join.workerID] {
      guard existing.peer == peer else {
        return .refused(
          .duplicateWorker,
          "worker id \(join.workerID) is already joined from another connection; give each worker its own id"
        )
      }
      workers[join.workerID]!.lastSeen = now
      // A retried join: answer it again.
      return .retried
    }
    if let known = dataset, known != join.dataset {
      return .refused(
        .datasetMismatch,
        "worker \(join.workerID) reads \(join.dataset), the run uses \(known); give every worker the same data file"
      )
    }
    if !leased, let other = workers.values.first, other.shard.count != join.shard.count {
      return .refused(
        .shardMismatch,
        "worker \(join.workerID) uses \(join.shard.count) shards, joined workers use \(other.shard.count)"
      )
    }
    dataset = join.dataset
    workers[join.workerID] = Worker(peer: peer, shard: join.shard, lastSeen: now)
    everJoined.insert(join.workerID)
    return .admitted
  }

  /// The joined workers silent for longer than `limit` (ms) at `now`, in id order.
  func silentWorkers(now: UInt64, limit: UInt64) -> [UInt32] {
    workers.filter { now > $0.value.lastSeen && now - $0.value.lastSeen > limit }
      .keys.sorted()
  }

  /// Removes `workerID` from the joined workers (its applied sequences stay).
  func remove(_ workerID: UInt32) {
    workers[workerID] = nil
  }

  /// Records that `push` was applied, `staleness` versions after the version
  /// it was computed at.
  func markApplied(_ push: GradientPush, staleness: UInt64) {
    markApplied(push.workerID, sequence: push.sequence, staleness: staleness)
  }

  /// Records that push `sequence` of `workerID` was applied, `staleness`
  /// versions after the version it was computed at.
  func markApplied(_ workerID: UInt32, sequence: UInt64, staleness: UInt64) {
    if let worker = workers[workerID] {
      worker.lastStaleness = staleness
      worker.pushesApplied += 1
    }
    var window = sequences[workerID] ?? SequenceWindow()
    window.markApplied(sequence)
    sequences.updateValue(window, forKey: workerID)
  }
}
