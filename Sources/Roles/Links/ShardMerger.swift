import TrainingMath
import WireProtocol

/// How several server shards are seen as one server, with no sockets: which part of a request
/// goes to which shard, and what the shards' answers mean together. Shard K of M owns a
/// contiguous range of the flat parameter vector; a gradient is cut into the shards' slices
/// (each computed at the version that shard last reported), anything else goes to all of
/// them; weights and statuses are concatenated in shard order, audit records of the same push
/// are joined into one, and an error from any shard is the answer.
public struct ShardMerger: Sendable {
  /// One shard's part of the parameters.
  public struct Slice: Equatable, Sendable {
    /// Its range in the flat parameter vector.
    public var range: Range<Int>
    /// Its tensors (a tensor cut by a shard boundary appears in both, each with its part).
    public var layout: [TensorSpec]
    /// The newest version it reported.
    public var version: UInt64

    /// A shard's slice as its status reports it.
    public init(range: Range<Int>, layout: [TensorSpec], version: UInt64) {
      self.range = range
      self.layout = layout
      self.version = version
    }
  }

  private struct RecordKey: Hashable {
    var worker: UInt32
    var sequence: UInt64
  }

  /// Most partial audit records kept while waiting for the other shards' parts,
  /// at least: a subscriber is owed one record per worker at a time, and one
  /// shard's parts may all come before another's, so the bound grows to twice
  /// the workers whose records have been seen (a fixed 256 dropped records,
  /// and left workers unaudited, in clusters of more than 256 workers).
  public static let minimumPartialRecords = 256
  /// Workers whose audit records have been seen.
  private var auditedWorkers: Set<UInt32> = []
  /// Most partial audit records kept now.
  var maximumPartialRecords: Int { max(Self.minimumPartialRecords, 2 * auditedWorkers.count) }

  /// The shards' slices, in shard order.
  public private(set) var slices: [Slice]
  private var answers: [WireMessage?]
  private var recordParts: [RecordKey: [Int: AuditRecord]] = [:]
  private var ready: [AuditRecord] = []

  /// A merger for shards with `slices`, in shard order.
  public init(slices: [Slice]) {
    self.slices = slices
    answers = Array(repeating: nil, count: slices.count)
  }

  /// The slice of shard `position` of `count`, from its status, or an error naming the
  /// endpoint if the server there is another shard.
  public static func slice(
    of status: ServerStatus, at position: Int, of count: Int, endpoint: String
  ) throws(RoleError) -> Slice {
    guard status.serverShard.index == position, status.serverShard.count == count else {
      throw .invalidArgument(
        "\(endpoint) is server shard \(status.serverShard), but was listed as \(position)/\(count); list the servers in shard order"
      )
    }
    let offset = Int(status.parameterOffset)
    return Slice(
      range: offset..<(offset + status.parameters.values.count),
      layout: status.parameters.layout, version: status.version)
  }

  /// The message each shard is sent for `message`, in shard order. A request that is answered
  /// forgets the answers collected so far; heartbeats, audit results and evaluations are not
  /// answered.
  public mutating func split(_ message: WireMessage) throws(RoleError) -> [WireMessage] {
    switch message {
    case .heartbeat, .auditResult, .evaluation:
      break  // no answer comes; keep collecting the answers to the last request
    default:
      answers = Array(repeating: nil, count: slices.count)
    }
    switch message {
    case .push(let push):
      return slices.map { slice in
        var part = push
        part.computedAtVersion = slice.version
        part.gradient = NamedTensors(
          layout: slice.layout, values: Array(push.gradient.values[slice.range]))
        return .push(part)
      }
    case .leaseRequest:
      throw .invalidArgument(
        "leased work is not supported with several server shards; use --shard I/N")
    case .pushes:
      throw .invalidArgument(
        "several pushes per frame are not supported with several server shards")
    default:
      return Array(repeating: message, count: slices.count)
    }
  }

  /// Takes `message` from shard `index`.
  public mutating func accept(_ message: WireMessage, from index: Int) {
    if case .auditRecord(let record) = message {
      collect(record, from: index)
    } else {
      answers[index] = message
    }
  }

  /// The next message for the client: a joined audit record, or the merged answer once every
  /// shard has answered (or one refused), or nil while waiting for more.
  public mutating func next() -> WireMessage? {
    if !ready.isEmpty { return .auditRecord(ready.removeFirst()) }
    return mergedAnswer()
  }

  private mutating func collect(_ record: AuditRecord, from index: Int) {
    let key = RecordKey(worker: record.workerID, sequence: record.sequence)
    recordParts[key, default: [:]][index] = record
    if auditedWorkers.count < WireCodec.maximumWorkers { auditedWorkers.insert(record.workerID) }
    guard let parts = recordParts[key], parts.count == slices.count else {
      if recordParts.count > maximumPartialRecords,
        let oldest = recordParts.keys.min(by: { $0.sequence < $1.sequence })
      {
        recordParts[oldest] = nil  // a part that never completed (shards audited different pushes)
      }
      return
    }
    recordParts[key] = nil
    let ordered = (0..<slices.count).map { parts[$0]! }
    var merged = ordered[0]
    merged.computedAtVersion = ordered.map(\.computedAtVersion).min()!
    merged.appliedAtVersion = ordered.map(\.appliedAtVersion).max()!
    merged.weights = Self.concatenate(ordered.map(\.weights))
    merged.gradient = Self.concatenate(ordered.map(\.gradient))
    ready.append(merged)
  }

  /// Joins slices in shard order, merging a tensor split across shards.
  static func concatenate(_ parts: [NamedTensors]) -> NamedTensors {
    var layout: [TensorSpec] = []
    for spec in parts.flatMap(\.layout) {
      if let last = layout.last, last.name == spec.name {
        // A tensor split across shards comes back as a vector of its elements.
        layout[layout.count - 1] = TensorSpec(
          name: last.name, count: last.count + spec.count, elementType: last.elementType)
      } else {
        layout.append(spec)
      }
    }
    return NamedTensors(layout: layout, values: parts.flatMap(\.values))
  }

  private mutating func mergedAnswer() -> WireMessage? {
    if let error = answers.first(where: { if case .error = $0 { true } else { false } }) {
      answers = Array(repeating: nil, count: slices.count)
      return error
    }
    guard answers.allSatisfy({ $0 != nil }) else { return nil }
    let all = answers.map { $0! }
    answers = Array(repeating: nil, count: slices.count)
    switch all[0] {
    case .weights:
      let replies = all.compactMap { if case .weights(let reply) = $0 { reply } else { nil } }
      guard replies.count == all.count else { return Self.mismatched(all) }
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
          parameters: Self.concatenate(replies.map(\.parameters))))
    case .status:
      let statuses = all.compactMap { if case .status(let status) = $0 { status } else { nil } }
      guard statuses.count == all.count else { return Self.mismatched(all) }
      var merged = statuses[0]
      merged.version = statuses.map(\.version).min()!
      merged.gradientsApplied = statuses.map(\.gradientsApplied).min()!
      merged.rejected = statuses.reduce(0) { $0 + $1.rejected }
      merged.auditRecordsSent = statuses.map(\.auditRecordsSent).min()!
      // Every shard quarantines on the same verdicts; each rolls back its own slice.
      merged.quarantine.rollbacks = statuses.map(\.quarantine.rollbacks).max()!
      merged.quarantine.versionsRolledBack = statuses.map(\.quarantine.versionsRolledBack).max()!
      merged.keyedTable = Self.sum(statuses.compactMap(\.keyedTable))
      merged.parameters = Self.concatenate(statuses.map(\.parameters))
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

  /// The shards' keyed tables as one: rows, bytes and traffic summed; examples
  /// the most any shard saw (a push reaches every shard that owns some of its keys).
  static func sum(_ tables: [KeyedTableStatus]) -> KeyedTableStatus? {
    guard var total = tables.first else { return nil }
    for table in tables.dropFirst() {
      total.rowsTouched += table.rowsTouched
      total.rowBytes += table.rowBytes
      total.bytesAllocated += table.bytesAllocated
      total.pulls += table.pulls
      total.pushes += table.pushes
      total.keysPulled += table.keysPulled
      total.keysPushed += table.keysPushed
      total.keyCacheHits += table.keyCacheHits
      total.keyCacheMisses += table.keyCacheMisses
      total.examples = max(total.examples, table.examples)
      total.bytesReceived += table.bytesReceived
      total.bytesSent += table.bytesSent
    }
    return total
  }

  private static func mismatched(_ answers: [WireMessage]) -> WireMessage {
    .error(
      ErrorReply(
        code: .unexpectedMessage,
        message:
          "server shards answered differently: \(answers.map { "\($0.type)" }.joined(separator: ", "))"
      ))
  }
}
