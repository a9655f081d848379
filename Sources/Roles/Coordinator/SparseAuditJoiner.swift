import TrainingMath
import WireProtocol

/// Joins the server shards' parts of one sparse push's audit record, by worker
/// and sequence, into the record of the whole push: keys merged in sorted order
/// with their served rows and gradient rows. The parts expected are one per
/// shard that owns some of the push's keys (the coordinator knows them from the
/// push's rows). No sockets: the coordinator hands it every part it receives.
public struct SparseAuditJoiner: Sendable {
  /// Pushes waiting for more parts, at most: a part whose fellows never come
  /// (one shard audited a push, another did not) is dropped, oldest first.
  public static let maximumPartial = 256

  private struct Key: Hashable {
    var worker: UInt32
    var sequence: UInt64
  }

  private var parts: [Key: [Int: SparseAuditRecord]] = [:]
  private var arrival: [Key] = []

  /// Pushes dropped incomplete.
  public private(set) var dropped = 0

  /// No parts yet.
  public init() {}

  /// Pushes waiting for more parts.
  public var waiting: Int { parts.count }

  /// Takes `part`; returns the whole push's record once `expectedShards` parts
  /// (from distinct shards) are in, or at once when one part is the whole.
  public mutating func accept(_ part: SparseAuditRecord, expectedShards: Int) -> SparseAuditRecord?
  {
    if expectedShards <= 1 { return part }
    let key = Key(worker: part.workerID, sequence: part.sequence)
    if parts[key] == nil { arrival.append(key) }
    parts[key, default: [:]][part.serverShard.index] = part
    guard parts[key]!.count >= expectedShards else {
      while parts.count > Self.maximumPartial, !arrival.isEmpty {
        if parts.removeValue(forKey: arrival.removeFirst()) != nil { dropped += 1 }
      }
      return nil
    }
    let whole = Self.join(parts.removeValue(forKey: key)!.sorted { $0.key < $1.key }.map(\.value))
    arrival.removeAll { $0 == key }
    return whole
  }

  /// The parts of one push as one record: keys merged in sorted order with
  /// their rows, the oldest computed-at and newest applied-at versions, shard 0 of 1.
  public static func join(_ parts: [SparseAuditRecord]) -> SparseAuditRecord {
    var whole = parts[0]
    guard parts.count > 1 else { return whole }
    let width = whole.values.count / max(1, whole.keys.count)
    var entries: [(key: UInt64, part: Int, position: Int)] = []
    for (index, part) in parts.enumerated() {
      for (position, key) in part.keys.enumerated() { entries.append((key, index, position)) }
    }
    entries.sort { $0.key < $1.key }
    whole.keys = entries.map(\.key)
    whole.values = []
    whole.gradients = []
    whole.values.reserveCapacity(entries.count * width)
    whole.gradients.reserveCapacity(entries.count * width)
    for entry in entries {
      let range = (entry.position * width)..<((entry.position + 1) * width)
      whole.values.append(contentsOf: parts[entry.part].values[range])
      whole.gradients.append(contentsOf: parts[entry.part].gradients[range])
    }
    whole.computedAtVersion = parts.map(\.computedAtVersion).min()!
    whole.appliedAtVersion = parts.map(\.appliedAtVersion).max()!
    whole.serverShard = Shard.whole
    return whole
  }
}
