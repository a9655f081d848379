import TrainingMath
import WireProtocol

/// How a sparse model's requests reach server shards that each own the keys
/// `KeyOwnership` gives them, with no sockets: a pull or push is cut into one
/// part per shard that owns some of its keys (keys, and a push's gradient rows,
/// in the same order), and the shards' answers to one request are joined into
/// one: rows put back in the request's key order, and an acknowledgement once
/// every shard sent part of the push has applied it. A key list cached under an
/// id is cut the same way, so a push that names a cached list is cut by the
/// pull's positions.
public struct SparseShardRouter: Sendable {
  /// Most cached lists whose cut is remembered.
  public static let rememberedLists = 256

  /// Which shard owns which key.
  public let ownership: KeyOwnership

  private enum Awaited: Sendable {
    case rows(positions: [[Int]], count: Int, parts: [Int: SparseRows])
    case ack(shards: Set<Int>, acks: [Int: SparseAck])
  }

  /// What each request in flight (by sequence number) awaits.
  private var pending: [UInt64: Awaited] = [:]
  /// The cut of each cached list, by cache id, oldest first.
  private var cuts: [UInt32: [[Int]]] = [:]
  private var cutOrder: [UInt32] = []

  /// A router over `shards` server shards.
  public init(shards: Int) {
    ownership = KeyOwnership(shards: shards)
  }

  /// Whether `message` is one this router cuts.
  public static func routes(_ message: WireMessage) -> Bool {
    switch message {
    case .sparsePull, .sparsePush: true
    default: false
    }
  }

  /// Whether `message` is an answer this router joins.
  public static func joins(_ message: WireMessage) -> Bool {
    switch message {
    case .sparseRows, .sparseAck: true
    default: false
    }
  }

  /// The parts of `message` (a sparse pull or push), each with the shard it goes to.
  public mutating func split(_ message: WireMessage) throws(RoleError) -> [(
    shard: Int, message: WireMessage
  )] {
    switch message {
    case .sparsePull(let pull):
      guard case .keys(let keys, let cacheAs) = pull.keys else {
        throw .invalidArgument("a pull through several server shards lists its keys")
      }
      let positions = ownership.split(keys)
      if cacheAs != 0 { remember(positions, as: cacheAs) }
      pending[pull.sequence] = .rows(positions: positions, count: keys.count, parts: [:])
      return positions.enumerated().compactMap { shard, owned in
        guard !owned.isEmpty else { return nil }
        var part = pull
        part.keys = .keys(owned.map { keys[$0] }, cacheAs: cacheAs)
        return (shard, .sparsePull(part))
      }
    case .sparsePush(let push):
      let positions: [[Int]]
      switch push.keys {
      case .keys(let keys, let cacheAs):
        positions = ownership.split(keys)
        if cacheAs != 0 { remember(positions, as: cacheAs) }
      case .cached(let id, _):
        guard let cut = cuts[id] else {
          throw .invalidArgument("no pull cached key list \(id) through this link")
        }
        positions = cut
      }
      let width = push.gradients.count / max(1, push.keys.count)
      var shards: Set<Int> = []
      var parts: [(shard: Int, message: WireMessage)] = []
      for (shard, owned) in positions.enumerated() where !owned.isEmpty {
        var part = push
        switch push.keys {
        case .keys(let keys, let cacheAs):
          part.keys = .keys(owned.map { keys[$0] }, cacheAs: cacheAs)
        case .cached(let id, _):
          part.keys = .cached(id: id, count: UInt32(owned.count))
        }
        var gradients: [Double] = []
        gradients.reserveCapacity(owned.count * width)
        for position in owned {
          gradients.append(
            contentsOf: push.gradients[(position * width)..<((position + 1) * width)])
        }
        part.gradients = gradients
        shards.insert(shard)
        parts.append((shard, .sparsePush(part)))
      }
      pending[push.sequence] = .ack(shards: shards, acks: [:])
      return parts
    default:
      throw .invalidArgument("\(message.type) is not a sparse request")
    }
  }

  /// Takes shard `shard`'s answer; returns the joined answer once every part is in.
  public mutating func accept(_ message: WireMessage, from shard: Int) -> WireMessage? {
    switch message {
    case .sparseRows(let rows):
      guard case .rows(let positions, let count, var parts) = pending[rows.sequence] else {
        return nil  // a late answer to a request already answered
      }
      parts[shard] = rows
      let expected = positions.filter { !$0.isEmpty }.count
      guard parts.count == expected else {
        pending[rows.sequence] = .rows(positions: positions, count: count, parts: parts)
        return nil
      }
      pending[rows.sequence] = nil
      let width = Int(rows.width)
      for (part, answer) in parts
      where answer.width != rows.width || answer.values.count != positions[part].count * width {
        return .error(
          ErrorReply(
            code: .malformed,
            message:
              "server shard \(part) answered \(answer.values.count) values of width \(answer.width) for \(positions[part].count) keys of width \(width)"
          ))
      }
      var values = [Double](repeating: 0, count: count * width)
      for (part, answer) in parts {
        for (index, position) in positions[part].enumerated() {
          for column in 0..<width {
            values[position * width + column] = answer.values[index * width + column]
          }
        }
      }
      return .sparseRows(
        SparseRows(
          version: parts.values.map(\.version).min()!, sequence: rows.sequence, width: rows.width,
          values: values))
    case .sparseAck(let ack):
      guard case .ack(let shards, var acks) = pending[ack.sequence] else { return nil }
      acks[shard] = ack
      guard acks.count == shards.count else {
        pending[ack.sequence] = .ack(shards: shards, acks: acks)
        return nil
      }
      pending[ack.sequence] = nil
      return .sparseAck(
        SparseAck(version: acks.values.map(\.version).min()!, sequence: ack.sequence))
    default:
      return nil
    }
  }

  private mutating func remember(_ cut: [[Int]], as id: UInt32) {
    if cuts.updateValue(cut, forKey: id) == nil {
      cutOrder.append(id)
      if cutOrder.count > Self.rememberedLists { cuts[cutOrder.removeFirst()] = nil }
    }
  }
}
