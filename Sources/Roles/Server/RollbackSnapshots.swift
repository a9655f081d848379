import TrainingMath
import WireProtocol

/// The states a quarantining server may return to: every `every` versions it
/// keeps the parameters, the optimizer's state and the leased rows' progress,
/// and for each worker the oldest of those states that precedes a push of it
/// no audit has vouched for yet (its "needs"). A worker's confirmed failure
/// returns the server to the oldest state it needs, which undoes every push of
/// it since its last passed audit.
///
/// A snapshot is taken by keeping the current values, which share their
/// storage with the live ones until the next update copies them (copy on
/// write): each costs one copy of the parameters and of the optimizer's
/// moments, paid by the first update after it. Snapshots that no worker needs
/// are dropped (the newest is kept: the next pushes need it), and at most
/// `maximumCount` are kept: past that, the snapshot whose neighbours are
/// closest is dropped and the workers that needed it need the older
/// neighbour instead, so a rollback may go back further than necessary, never
/// less.
///
/// A class, so that the server updates it in place on every push.
final class RollbackSnapshots {
  /// One state to return to.
  struct Snapshot {
    /// The version the state is of.
    var version: UInt64
    /// The parameters.
    var store: ParameterStore
    /// The optimizer with its state.
    var optimizer: Optimizer
    /// The leased rows' progress (nil when workers bring shards).
    var work: LeasedWork?

    /// Bytes of parameters and optimizer state (what a snapshot costs once the
    /// live values have moved on).
    var byteCount: Int {
      store.byteCount + 8 * (optimizer.firstMoment.count + optimizer.secondMoment.count)
        + 24 * (work?.chunks.count ?? 0)
    }
  }

  /// One interval of versions in which a worker has unvouched pushes: the
  /// snapshot before it, and the version the worker's latest push there
  /// produced.
  struct Need: Equatable {
    var snapshot: UInt64
    var lastApplied: UInt64
  }

  /// Versions between snapshots.
  let every: UInt64
  /// Bytes of snapshots kept at most (but always two snapshots).
  let byteBudget: Int
  /// The snapshots, oldest first; never empty.
  private(set) var snapshots: [Snapshot]
  /// Per worker, the intervals holding its unvouched pushes, oldest first.
  private(set) var needs: [UInt32: [Need]] = [:]
  /// Snapshots dropped for the byte budget while some worker needed them.
  private(set) var thinned: UInt64 = 0

  /// Snapshots every `every` versions within `byteBudget` bytes, the first of
  /// `initial`.
  init(every: UInt64, byteBudget: Int, initial: Snapshot) {
    self.every = max(1, every)
    self.byteBudget = byteBudget
    snapshots = [initial]
  }

  /// Most snapshots kept: the byte budget over one snapshot's bytes, at least 2.
  var maximumCount: Int {
    max(2, byteBudget / max(1, snapshots[0].byteCount))
  }

  /// Bytes the kept snapshots take at most (snapshots sharing storage are
  /// counted once each).
  var byteCount: Int { snapshots.reduce(0) { $0 + $1.byteCount } }

  /// The newest snapshot's version.
  var newestVersion: UInt64 { snapshots[snapshots.count - 1].version }

  /// Whether a snapshot is due at `version`.
  func isDue(at version: UInt64) -> Bool {
    version % every == 0 && version > newestVersion
  }

  /// Keeps `snapshot` as the newest, then drops what is no longer needed.
  func take(_ snapshot: Snapshot) {
    snapshots.append(snapshot)
    prune()
  }

  /// `worker`'s push produced `version`: it is unvouched until an audit passes
  /// a later push of it.
  func applied(_ worker: UInt32, at version: UInt64) {
    let base = newestVersion
    if let count = needs[worker]?.count, needs[worker]![count - 1].snapshot == base {
      needs[worker]![count - 1].lastApplied = version  // in place: no copy per push
    } else {
      needs[worker, default: []].append(Need(snapshot: base, lastApplied: version))
    }
  }

  /// An audit of `worker`'s push that produced `version` passed: its pushes up
  /// to there no longer pin a snapshot.
  func vouched(for worker: UInt32, through version: UInt64) {
    guard var list = needs[worker] else { return }
    list.removeAll { $0.lastApplied <= version }
    needs[worker] = list.isEmpty ? nil : list
    prune()
  }

  /// The snapshot to return to so that every unvouched push of `worker`, and
  /// its push that produced `failedAt` (when known), is undone: the oldest it
  /// needs; nil when it has no push to undo.
  func target(for worker: UInt32, failedAt: UInt64?) -> Snapshot? {
    var version = needs[worker]?.first?.snapshot
    if let failedAt, failedAt > 0 {
      // The newest snapshot before the failed push, or the oldest kept.
      let before =
        snapshots.last(where: { $0.version < failedAt })?.version ?? snapshots[0].version
      version = min(version ?? before, before)
    }
    guard let version else { return nil }
    return snapshots.first { $0.version >= version } ?? snapshots[0]
  }

  /// The server returned to `snapshot` and now holds its state at
  /// `newVersion`: later snapshots and the needs they anchored are gone (their
  /// pushes were undone), and the snapshot is relabelled `newVersion`, the
  /// base of the pushes to come.
  func rolledBack(to snapshot: Snapshot, newVersion: UInt64) {
    snapshots.removeAll { $0.version >= snapshot.version }
    for worker in needs.keys {
      let kept = needs[worker]!.filter { $0.snapshot < snapshot.version }
      needs[worker] = kept.isEmpty ? nil : kept
    }
    var relabelled = snapshot
    relabelled.version = newVersion
    snapshots.append(relabelled)
  }

  /// `worker` pins nothing any more (it was quarantined and its pushes undone).
  func forget(_ worker: UInt32) {
    needs[worker] = nil
    prune()
  }

  /// Drops the snapshots no worker needs (but the newest), then thins the
  /// rest down to `maximumCount`.
  private func prune() {
    var needed = Set<UInt64>()
    for list in needs.values { for need in list { needed.insert(need.snapshot) } }
    let newest = newestVersion
    snapshots.removeAll { $0.version != newest && !needed.contains($0.version) }
    let limit = maximumCount
    while snapshots.count > limit {
      // The inner snapshot with the closest neighbours goes; its needs move to
      // the older neighbour (it returns further back, never less).
      var drop = 1
      for index in 1..<(snapshots.count - 1)
      where snapshots[index + 1].version - snapshots[index - 1].version
        < snapshots[drop + 1].version - snapshots[drop - 1].version
      {
        drop = index
      }
      let gone = snapshots[drop].version
      let older = snapshots[drop - 1].version
      snapshots.remove(at: drop)
      thinned += 1
      for worker in needs.keys {
        var list = needs[worker]!
        for index in list.indices where list[index].snapshot == gone {
          list[index].snapshot = older
        }
        // Two intervals now start at the same snapshot: one need covers both.
        var merged: [Need] = []
        for need in list {
          if let last = merged.last, last.snapshot == need.snapshot {
            merged[merged.count - 1].lastApplied = max(last.lastApplied, need.lastApplied)
          } else {
            merged.append(need)
          }
        }
        needs[worker] = merged
      }
    }
  }
}
