import TrainingMath
import WireProtocol

/// A sparse model's parameters on one server shard: its keyed table, which keys
/// the shard owns, the key lists each worker asked the server to keep (key
/// caching), and the traffic counters `status` reports. It checks every key of a
/// request before anything changes: in range, owned here, the cached list known.
public final class KeyedParameters {
  /// Most key lists kept per worker; the oldest is dropped first.
  public static let cachedListsPerWorker = 64

  /// The model.
  public let model: SparseModelSpec
  /// The rows touched so far, with their optimizer state.
  public internal(set) var table: KeyedTable
  /// Which shard owns which key, and this server's shard.
  public let ownership: KeyOwnership
  public let shardIndex: Int

  /// Pulls and pushes served, keys they carried, and key-list references resolved or not.
  public private(set) var pulls: UInt64 = 0
  public private(set) var pushes: UInt64 = 0
  public private(set) var keysPulled: UInt64 = 0
  public private(set) var keysPushed: UInt64 = 0
  public private(set) var cacheHits: UInt64 = 0
  public private(set) var cacheMisses: UInt64 = 0
  /// Examples (rows) of the pushes applied, and the bytes of the sparse messages
  /// received and answered: the wire cost per example.
  public private(set) var examples: UInt64 = 0
  public internal(set) var bytesReceived: UInt64 = 0
  public internal(set) var bytesSent: UInt64 = 0

  /// The rows served for pushes an audit subscriber will be sent.
  var served = SparseServedRows()

  /// Per worker, cached key lists by id, oldest first.
  private var cached: [UInt32: [(id: UInt32, keys: [UInt64])]] = [:]

  /// An empty table for `model` on shard `shard`, updated by `optimizer`;
  /// untouched rows start as `model.rowInitialization(seed:)` says.
  public init(
    model: SparseModelSpec, optimizer: SparseOptimizerSettings, seed: UInt64, shard: Shard
  ) {
    self.model = model
    table = KeyedTable(
      width: model.rowWidth, optimizer: optimizer,
      initialization: model.rowInitialization(seed: seed))
    ownership = KeyOwnership(shards: shard.count)
    shardIndex = shard.index
  }

  /// Why a request's keys were refused: the error code and a message naming the field.
  public struct Refusal: Error, Equatable {
    public var code: ErrorCode
    public var message: String
  }

  /// The keys `list` stands for, checked: each in range and owned by this shard,
  /// a cached list known with the count given. A listed list with a cache id is
  /// kept for `workerID` only once it passed (a refused request changes nothing).
  func resolve(_ list: KeyList, of workerID: UInt32, field: String) -> Result<[UInt64], Refusal> {
    switch list {
    case .keys(let keys, let cacheAs):
      for (index, key) in keys.enumerated() {
        guard key <= model.largestKey else {
          return .failure(
            Refusal(
              code: .keyOutOfRange,
              message:
                "\(field)[\(index)] = \(key) is above the model's key space 0...\(model.largestKey) (\(model))"
            ))
        }
        guard ownership.owner(of: key) == shardIndex else {
          return .failure(
            Refusal(
              code: .shardMismatch,
              message:
                "\(field)[\(index)] = \(key) belongs to server shard \(ownership.owner(of: key))/\(ownership.shards), not \(shardIndex)/\(ownership.shards)"
            ))
        }
      }
      if cacheAs != 0 { keep(keys, as: cacheAs, for: workerID) }
      return .success(keys)
    case .cached(let id, let count):
      guard let keys = cached[workerID]?.last(where: { $0.id == id })?.keys else {
        cacheMisses += 1
        return .failure(
          Refusal(
            code: .unknownKeyList,
            message:
              "\(field): worker \(workerID) has no key list cached as \(id) here (the server keeps the last \(Self.cachedListsPerWorker)); send the keys"
          ))
      }
      guard keys.count == Int(count) else {
        cacheMisses += 1
        return .failure(
          Refusal(
            code: .unknownKeyList,
            message:
              "\(field): key list \(id) of worker \(workerID) holds \(keys.count) keys, not \(count)"
          ))
      }
      cacheHits += 1
      return .success(keys)
    }
  }

  private func keep(_ keys: [UInt64], as id: UInt32, for workerID: UInt32) {
    var lists = cached[workerID] ?? []
    lists.removeAll { $0.id == id }
    if lists.count >= Self.cachedListsPerWorker { lists.removeFirst() }
    lists.append((id, keys))
    cached[workerID] = lists
  }

  /// Counts the bytes of a sparse request and its answers.
  func count(received message: WireMessage, sent answers: [Outgoing]) {
    bytesReceived += UInt64(WireCodec.encodedSize(of: message))
    for answer in answers { bytesSent += UInt64(WireCodec.encodedSize(of: answer.message)) }
  }

  /// The table and its traffic, for `status`.
  public var report: KeyedTableStatus {
    KeyedTableStatus(
      modelName: model.wireName, width: UInt32(model.rowWidth), rowsTouched: UInt64(table.count),
      rowBytes: UInt64(table.rowBytes), bytesAllocated: UInt64(table.bytesAllocated),
      pulls: pulls, pushes: pushes, keysPulled: keysPulled, keysPushed: keysPushed,
      keyCacheHits: cacheHits, keyCacheMisses: cacheMisses, examples: examples,
      bytesReceived: bytesReceived, bytesSent: bytesSent)
  }

  /// Forgets a worker's cached lists and served rows (it left, was dropped or quarantined).
  func forget(_ workerID: UInt32) {
    cached[workerID] = nil
    served.forget(workerID)
  }

  /// The rows of `keys`, `width` each.
  func read(_ keys: [UInt64]) -> [Double] {
    pulls += 1
    keysPulled += UInt64(keys.count)
    var values: [Double] = []
    table.read(keys, into: &values)
    return values
  }

  /// Applies `gradients` to the rows of `keys`, the gradient of `examples` rows.
  func apply(_ keys: [UInt64], gradients: [Double], examples rows: Int) {
    pushes += 1
    examples += UInt64(rows)
    keysPushed += UInt64(keys.count)
    table.apply(keys, gradients: gradients)
  }
}
