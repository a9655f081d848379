import TrainingMath
import WireProtocol
import ZeroMQ

/// Several server shards seen as one server. Shard K of M owns a contiguous
/// range of the flat parameter vector; this link sends each shard its slice of
/// a gradient (computed at the version that shard last reported), sends
/// everything else to all of them, and merges their answers: weights and
/// statuses are concatenated in shard order, audit records of the same push are
/// joined into one. An error from any shard is the answer.
public final class ShardedServerLink: ServerLink {
  private struct Slice {
    var range: Range<Int>
    var layout: [TensorSpec]
    var version: UInt64 = 0
  }

  private let shards: [ServerConnection]
  private var slices: [Slice] = []
  private var answers: [WireMessage?]
  private var recordParts: [RecordKey: [Int: AuditRecord]] = [:]
  private var ready: [AuditRecord] = []

  private struct RecordKey: Hashable {
    var worker: UInt32
    var sequence: UInt64
  }

  /// Most partial audit records kept while waiting for the other shards' parts,
  /// at least: a subscriber is owed one record per worker at a time, and one
  /// shard's parts may all come before another's, so the bound grows to twice
  /// the workers whose records have been seen (a fixed 256 dropped records,
  /// and left workers unaudited, in clusters of more than 256 workers).
  static let minimumPartialRecords = 256
  /// Workers whose audit records have been seen.
  private var auditedWorkers: Set<UInt32> = []
  /// Most partial audit records kept now.
  var maximumPartialRecords: Int { max(Self.minimumPartialRecords, 2 * auditedWorkers.count) }

  public var endpoint: String { shards.map(\.endpoint).joined(separator: ",") }
  public var quietWaitNotice: ((String) -> Void)?

  /// Links `connections`, which must be server shards 0..<M in order; their
  /// statuses are asked for now to learn each shard's range.
  public init(connections: [ServerConnection], timeoutMilliseconds: Int) throws(RoleError) {
    shards = connections
    answers = Array(repeating: nil, count: connections.count)
    for (position, shard) in connections.enumerated() {
      let status = try shard.status(timeoutMilliseconds: timeoutMilliseconds)
      guard status.serverShard.index == position, status.serverShard.count == connections.count
      else {
        throw .invalidArgument(
          "\(shard.endpoint) is server shard \(status.serverShard), but was listed as \(position)/\(connections.count); list the servers in shard order"
        )
      }
      let offset = Int(status.parameterOffset)
      slices.append(
        Slice(
          range: offset..<(offset + status.parameters.values.count),
          layout: status.parameters.layout, version: status.version))
    }
  }

  public func send(_ message: WireMessage) throws(RoleError) {
    switch message {
    case .heartbeat, .auditResult:
      break  // no answer comes; keep collecting the answers to the last request
    default:
      answers = Array(repeating: nil, count: shards.count)
    }
    switch message {
    case .push(let push):
      for (index, shard) in shards.enumerated() {
        var part = push
        part.computedAtVersion = slices[index].version
        part.gradient = NamedTensors(
          layout: slices[index].layout, values: Array(push.gradient.values[slices[index].range]))
        try shard.send(.push(part))
      }
    case .leaseRequest:
      throw .invalidArgument(
        "leased work is not supported with several server shards; use --shard I/N")
    case .pushes:
      throw .invalidArgument(
        "several pushes per frame are not supported with several server shards")
    default:
      for shard in shards { try shard.send(message) }
    }
  }

  public func receive(timeoutMilliseconds: Int, graceAfterStopMilliseconds: Int?)
    throws(RoleError) -> WireMessage?
  {
    let deadline = MonotonicClock.milliseconds() + UInt64(max(0, timeoutMilliseconds))
    while true {
      if !ready.isEmpty { return .auditRecord(ready.removeFirst()) }
      var progressed = false
      for (index, shard) in shards.enumerated() {
        while let message = try shard.receive(
          timeoutMilliseconds: 0, graceAfterStopMilliseconds: nil)
        {
          progressed = true
          if case .auditRecord(let record) = message {
            collect(record, from: index)
          } else {
            answers[index] = message
          }
        }
      }
      if let merged = try mergedAnswer() { return merged }
      if !ready.isEmpty { continue }
      let now = MonotonicClock.milliseconds()
      if now >= deadline { return nil }
      if let grace = graceAfterStopMilliseconds, ShutdownSignal.isRequested, grace == 0 {
        return nil
      }
      if !progressed {
        var poller = Poller()
        for shard in shards { shard.addInput(to: &poller) }
        do {
          _ = try poller.poll(timeoutMilliseconds: Int(min(deadline - now, 50)))
        } catch {
          throw .transport(error)
        }
      }
    }
  }

  private func collect(_ record: AuditRecord, from index: Int) {
    let key = RecordKey(worker: record.workerID, sequence: record.sequence)
    recordParts[key, default: [:]][index] = record
    if auditedWorkers.count < WireCodec.maximumWorkers { auditedWorkers.insert(record.workerID) }
    guard let parts = recordParts[key], parts.count == shards.count else {
      if recordParts.count > maximumPartialRecords,
        let oldest = recordParts.keys.min(by: { $0.sequence < $1.sequence })
      {
        recordParts[oldest] = nil  // a part that never completed (shards audited different pushes)
      }
      return
    }
    recordParts[key] = nil
    let ordered = (0..<shards.count).map { parts[$0]! }
    var merged = ordered[0]
    merged.computedAtVersion = ordered.map(\.computedAtVersion).min()!
    merged.appliedAtVersion = ordered.map(\.appliedAtVersion).max()!
    merged.weights = concatenate(ordered.map(\.weights))
    merged.gradient = concatenate(ordered.map(\.gradient))
    ready.append(merged)
  }

  /// Joins slices in shard order, merging a tensor split across shards.
  private func concatenate(_ parts: [NamedTensors]) -> NamedTensors {
    var layout: [TensorSpec] = []
    for spec in parts.flatMap(\.layout) {
      if layout.last?.name == spec.name {
        layout[layout.count - 1].count += spec.count
      } else {
        layout.append(spec)
      }
    }
    return NamedTensors(layout: layout, values: parts.flatMap(\.values))
  }

  private func mergedAnswer() throws(RoleError) -> WireMessage? {
    if let error = answers.first(where: { if case .error = $0 { true } else { false } }) {
      answers = Array(repeating: nil, count: shards.count)
      return error
    }
    guard answers.allSatisfy({ $0 != nil }) else { return nil }
    let all = answers.map { $0! }
    answers = Array(repeating: nil, count: shards.count)
    switch all[0] {
    case .weights:
      let replies = all.compactMap { if case .weights(let reply) = $0 { reply } else { nil } }
      guard replies.count == all.count else { return mismatched(all) }
      for (index, reply) in replies.enumerated() { slices[index].version = reply.version }
      // Until every shard acknowledges the same push, report the oldest: the
      // worker then keeps waiting and resends, and each shard answers again.
      let acknowledged = replies.map(\.acknowledgedSequence).min()!
      return .weights(
        WeightsReply(
          version: replies.map(\.version).min()!, acknowledgedSequence: acknowledged,
          appliedBelow: SequenceWindow.appliedOnEvery(
            replies.map {
              SequenceWindow(highest: $0.acknowledgedSequence, below: $0.appliedBelow)
            },
            below: acknowledged),
          parameters: concatenate(replies.map(\.parameters))))
    case .status:
      let statuses = all.compactMap { if case .status(let status) = $0 { status } else { nil } }
      guard statuses.count == all.count else { return mismatched(all) }
      var merged = statuses[0]
      merged.version = statuses.map(\.version).min()!
      merged.gradientsApplied = statuses.map(\.gradientsApplied).min()!
      merged.rejected = statuses.reduce(0) { $0 + $1.rejected }
      merged.auditRecordsSent = statuses.map(\.auditRecordsSent).min()!
      merged.parameters = concatenate(statuses.map(\.parameters))
      merged.parameterOffset = 0
      merged.serverShard = Shard.whole
      return .status(merged)
    case .subscription(let first):
      let states = all.compactMap { if case .subscription(let state) = $0 { state } else { nil } }
      return .subscription(
        SubscriptionState(
          every: first.every, recordsSent: states.map(\.recordsSent).min() ?? 0,
          recordsDropped: states.reduce(0) { $0 + $1.recordsDropped }))
    default:
      return all[0]
    }
  }

  private func mismatched(_ answers: [WireMessage]) -> WireMessage {
    .error(
      ErrorReply(
        code: .unexpectedMessage,
        message:
          "server shards answered differently: \(answers.map { "\($0.type)" }.joined(separator: ", "))"
      ))
  }
}
