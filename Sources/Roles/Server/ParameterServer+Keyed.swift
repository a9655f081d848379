import TrainingMath
import WireProtocol

// Sparse models: pulls of keys and pushes of their gradient rows, applied to the
// keyed table on arrival (async). A push is applied at most once (the same
// sequence window as dense pushes); a refused pull or push changes nothing.

extension ParameterServer {
  /// Answers a pull with the rows of its keys at the current version.
  func sparsePull(_ pull: SparsePull, from peer: PeerID, now: UInt64) -> [Outgoing] {
    guard let keyed else { return refuseNotKeyed(peer) }
    let answer = answerPull(pull, keyed, from: peer, now: now)
    keyed.count(received: .sparsePull(pull), sent: answer)
    return answer
  }

  private func answerPull(
    _ pull: SparsePull, _ keyed: KeyedParameters, from peer: PeerID, now: UInt64
  ) -> [Outgoing] {
    guard seen(pull.workerID, from: peer, now: now) else {
      return refuse(peer, .notJoined, "worker \(pull.workerID) has not joined from this connection")
    }
    switch keyed.resolve(pull.keys, of: pull.workerID, field: "keys") {
    case .failure(let refusal):
      return refuse(peer, refusal.code, refusal.message)
    case .success(let keys):
      let rows = SparseRows(
        version: version, sequence: pull.sequence, width: UInt32(keyed.model.rowWidth),
        values: keyed.read(keys))
      return [Outgoing(to: peer, .sparseRows(rows))]
    }
  }

  /// Applies a push's gradient rows as one version, or answers a retried one
  /// again; refuses it (changing nothing) when its keys or sizes are wrong.
  func sparsePush(_ push: SparsePush, from peer: PeerID, now: UInt64) -> [Outgoing] {
    guard let keyed else { return refuseNotKeyed(peer) }
    let answer = applyPush(push, keyed, from: peer, now: now)
    keyed.count(received: .sparsePush(push), sent: answer)
    return answer
  }

  private func applyPush(
    _ push: SparsePush, _ keyed: KeyedParameters, from peer: PeerID, now: UInt64
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
      let staleness = version - 1 - min(version - 1, push.computedAtVersion)
      membership.markApplied(push.workerID, sequence: push.sequence, staleness: staleness)
      recordStaleness(staleness)
      return [Outgoing(to: peer, .sparseAck(SparseAck(version: version, sequence: push.sequence)))]
    }
  }

  private func refuseNotKeyed(_ peer: PeerID) -> [Outgoing] {
    refuse(
      peer, .unexpectedMessage,
      "this server holds the dense model \(configuration.model), not a sparse one; start it with --model sparse-logreg or fm:K"
    )
  }
}
