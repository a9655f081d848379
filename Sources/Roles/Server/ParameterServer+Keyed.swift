import TrainingMath
import WireProtocol

// Sparse models: pulls of keys and pushes of their gradient rows, applied to the
// keyed table on arrival (async). A push is applied at most once (the same
// sequence window as dense pushes); a refused pull or push changes nothing.

extension ParameterServer {
  /// Answers a pull with the rows of its keys at the current version. A peer
  /// that has not joined (a coordinator evaluating the model) is answered too
  /// when it asks for no caching: the read changes nothing and counts nothing
  /// against membership. A joined worker's pull whose push an audit subscriber
  /// wants keeps the rows served, for the audit record.
  func sparsePull(_ pull: SparsePull, from peer: PeerID, now: UInt64) -> [Outgoing] {
    guard let keyed else { return refuseNotKeyed(peer) }
    // The traffic counts are the workers' (an evaluator's reads are not training's cost).
    let fromWorker = membership.isJoined(pull.workerID, from: peer)
    let answer = answerPull(pull, keyed, from: peer, now: now)
    if fromWorker { keyed.count(received: .sparsePull(pull), sent: answer) }
    return answer
  }

  private func answerPull(
    _ pull: SparsePull, _ keyed: KeyedParameters, from peer: PeerID, now: UInt64
  ) -> [Outgoing] {
    let joined = seen(pull.workerID, from: peer, now: now)
    guard joined || pull.keys.isReadOnly else {
      return refuse(
        peer, .notJoined,
        "worker \(pull.workerID) has not joined from this connection (a peer that has not joined may only pull keys uncached, cacheAs 0)"
      )
    }
    switch keyed.resolve(pull.keys, of: pull.workerID, field: "keys") {
    case .failure(let refusal):
      return refuse(peer, refusal.code, refusal.message)
    case .success(let keys):
      let values = keyed.read(keys)
      if joined, audits.wantsSparse(workerID: pull.workerID, sequence: pull.sequence) {
        keyed.served.keep(
          SparseServedRows.Served(
            sequence: pull.sequence, version: version, keys: keys, values: values),
          of: pull.workerID)
      }
      let rows = SparseRows(
        version: version, sequence: pull.sequence, width: UInt32(keyed.model.rowWidth),
        values: values)
      return [Outgoing(to: peer, .sparseRows(rows))]
    }
  }

  /// Applies a push's gradient rows as one version, or answers a retried one
  /// again; refuses it (changing nothing) when its keys or sizes are wrong. An
  /// applied push is followed by the audit records subscribers want of it (not
  /// counted as the worker's traffic).
  func sparsePush(_ push: SparsePush, from peer: PeerID, now: UInt64) -> [Outgoing] {
    guard let keyed else { return refuseNotKeyed(peer) }
    var records: [Outgoing] = []
    let answer = applyPush(push, keyed, from: peer, now: now, records: &records)
    keyed.count(received: .sparsePush(push), sent: answer)
    return answer + records
  }

  private func applyPush(
    _ push: SparsePush, _ keyed: KeyedParameters, from peer: PeerID, now: UInt64,
    records: inout [Outgoing]
  ) -> [Outgoing] {
    guard seen(push.workerID, from: peer, now: now) else {
      return refuse(peer, .notJoined, "worker \(push.workerID) has not joined from this connection")
    }
    let window = membership.window(of: push.workerID)
    switch window.verdict(for: push.sequence) {
    case .applied:
      return [Outgoing(to: peer, .sparseAck(SparseAck(version: version, sequence: push.sequence)))]
    case .tooOld:
      return refuse(
        peer, .replayed,
        "push \(push.sequence) of worker \(push.workerID) is older than the \(SequenceWindow.width) pushes remembered below the last applied, \(window.highest)"
      )
    case .new:
      break
    }
    guard push.computedAtVersion <= version else {
      return refuse(
        peer, .versionMismatch,
        "push \(push.sequence) claims version \(push.computedAtVersion), the server is at \(version)"
      )
    }
    let width = keyed.model.rowWidth
    guard push.gradients.count == push.keys.count * width else {
      return refuse(
        peer, .layoutMismatch,
        "gradients count: \(push.gradients.count) values for \(push.keys.count) keys, but \(keyed.model) has \(width) per key"
      )
    }
    if let dataset = membership.dataset, let last = push.rows.max(), UInt64(last) >= dataset.rows {
      return refuse(
        peer, .datasetMismatch, "rows: row \(last) is beyond the run's \(dataset.rows) rows")
    }
    switch keyed.resolve(push.keys, of: push.workerID, field: "keys") {
    case .failure(let refusal):
      return refuse(peer, refusal.code, refusal.message)
    case .success(let keys):
      keyed.apply(keys, gradients: push.gradients, examples: push.rows.count)
      version += 1
      gradientsApplied += 1
      rowsApplied += UInt64(push.rows.count)
      let staleness = version - 1 - min(version - 1, push.computedAtVersion)
      membership.markApplied(push.workerID, sequence: push.sequence, staleness: staleness)
      recordStaleness(staleness)
      appendSparseAuditRecords(for: push, keys: keys, to: &records)
      return [Outgoing(to: peer, .sparseAck(SparseAck(version: version, sequence: push.sequence)))]
    }
  }

  /// Appends the audit records subscribers want of `push` (resolved to `keys`),
  /// just applied, with the rows its pull was served; drops those rows either
  /// way, and owes every worker to the subscribers whose period this version completes.
  private func appendSparseAuditRecords(
    for push: SparsePush, keys: [UInt64], to outgoing: inout [Outgoing]
  ) {
    guard let keyed else { return }
    let served = keyed.served.take(push.workerID, sequence: push.sequence)
    let before = outgoing.count
    audits.appendSparseRecords(
      for: push, keys: keys, served: served, modelName: keyed.model.wireName,
      dataset: membership.dataset, shard: configuration.shard, appliedAt: version, to: &outgoing)
    if configuration.quarantine != nil, outgoing.count > before {
      quarantineList.audited(push.workerID, sequence: push.sequence, version: version)
    }
    audits.owePeriods(at: version, workers: membership.workers.keys)
  }

  private func refuseNotKeyed(_ peer: PeerID) -> [Outgoing] {
    refuse(
      peer, .unexpectedMessage,
      "this server holds the dense model \(configuration.model), not a sparse one; start it with --model sparse-logreg or fm:K"
    )
  }
}

extension KeyList {
  /// Whether the list asks the server to keep nothing: listed keys with no cache id.
  var isReadOnly: Bool {
    if case .keys(_, cacheAs: 0) = self { true } else { false }
  }
}
