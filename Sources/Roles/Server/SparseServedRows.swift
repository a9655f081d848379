/// The rows a sparse server shard served for pushes an audit subscriber is to be
/// sent, kept from the pull until the push is applied, so that the audit sees
/// what the worker saw. A pull carries its push's sequence number, and the
/// subscribers' draw decides at pull time whether that push will be audited:
/// only those pulls are kept, at most `perWorker` per worker (the oldest goes
/// first), and a worker's are dropped when it leaves.
struct SparseServedRows {
  /// Pulls kept per worker at most: more than any pipeline keeps in flight.
  static let perWorker = 64

  /// One pull's answer: the version it was read at, its keys and their rows.
  struct Served: Equatable {
    var sequence: UInt64
    var version: UInt64
    var keys: [UInt64]
    var values: [Double]
  }

  private var served: [UInt32: [Served]] = [:]

  /// Pulls kept, over every worker.
  var count: Int { served.values.reduce(0) { $0 + $1.count } }

  /// Keeps `pull` of `workerID`; a retried pull of the same push replaces the
  /// earlier answer (the worker computes at the answer that reached it, the last).
  mutating func keep(_ pull: Served, of workerID: UInt32) {
    var list = served[workerID] ?? []
    list.removeAll { $0.sequence == pull.sequence }
    if list.count >= Self.perWorker { list.removeFirst(list.count - Self.perWorker + 1) }
    list.append(pull)
    served[workerID] = list
  }

  /// The answer kept for push `sequence` of `workerID`, removed (nil: none was kept).
  mutating func take(_ workerID: UInt32, sequence: UInt64) -> Served? {
    guard var list = served[workerID],
      let index = list.firstIndex(where: { $0.sequence == sequence })
    else { return nil }
    let pull = list.remove(at: index)
    served[workerID] = list.isEmpty ? nil : list
    return pull
  }

  /// Drops every answer kept for `workerID` (it left, was dropped or quarantined).
  mutating func forget(_ workerID: UInt32) {
    served[workerID] = nil
  }
}
