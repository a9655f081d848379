import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// Several server shards seen as one server: moves the messages `ShardMerger` cuts and joins
/// between the client and each shard's connection.
public final class ShardedServerLink: ServerLink {
  private let shards: [ServerConnection]
  private var merger: ShardMerger
  /// Sparse pulls and pushes, cut by key owner.
  private var router: SparseShardRouter
  /// Joined sparse answers not yet handed out.
  private var joined: [WireMessage] = []

  public var endpoint: String { shards.map(\.endpoint).joined(separator: ",") }
  public var quietWaitNotice: ((String) -> Void)?

  /// Links `connections`, which must be server shards 0..<M in order; their
  /// statuses are asked for now to learn each shard's range.
  public init(connections: [ServerConnection], timeoutMilliseconds: Int) throws(RoleError) {
    shards = connections
    var slices: [ShardMerger.Slice] = []
    for (position, shard) in connections.enumerated() {
      let status = try shard.status(timeoutMilliseconds: timeoutMilliseconds)
      slices.append(
        try ShardMerger.slice(
          of: status, at: position, of: connections.count, endpoint: shard.endpoint))
    }
    merger = ShardMerger(slices: slices)
    router = SparseShardRouter(shards: connections.count)
  }

  public func send(_ message: WireMessage) throws(RoleError) {
    if SparseShardRouter.routes(message) {
      for (shard, part) in try router.split(message) { try shards[shard].send(part) }
      return
    }
    for (shard, part) in zip(shards, try merger.split(message)) { try shard.send(part) }
  }

  public func receive(timeoutMilliseconds: Int, graceAfterStopMilliseconds: Int?)
    throws(RoleError) -> WireMessage?
  {
    let deadline = MonotonicClock.milliseconds() + UInt64(max(0, timeoutMilliseconds))
    while true {
      var progressed = false
      for (index, shard) in shards.enumerated() {
        while let message = try shard.receive(
          timeoutMilliseconds: 0, graceAfterStopMilliseconds: nil)
        {
          progressed = true
          if SparseShardRouter.joins(message) {
            if let answer = router.accept(message, from: index) { joined.append(answer) }
          } else if case .sparseAuditRecord = message {
            joined.append(message)  // one shard's part: the coordinator joins the parts
          } else {
            merger.accept(message, from: index)
          }
        }
      }
      if !joined.isEmpty { return joined.removeFirst() }
      if let answer = merger.next() { return answer }
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
}
