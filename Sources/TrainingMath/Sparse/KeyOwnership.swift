/// Which of `shards` server shards owns a key of a keyed table: a 64-bit mix of
/// the key reduced to 0..<shards, so consecutive small ids spread evenly (ps-lite
/// ranges put them all on server 0) and every key has exactly one owner, whatever
/// the shard count (no top range left over when it does not divide the key space).
public struct KeyOwnership: Equatable, Sendable {
  /// The number of server shards.
  public let shards: Int

  /// Ownership over `shards` shards (1...65536, as `Shard`).
  public init(shards: Int) {
    precondition((1...Shard.maximumCount).contains(shards), "shard count out of range")
    self.shards = shards
  }

  /// The shard that owns `key`.
  @inlinable
  public func owner(of key: UInt64) -> Int {
    // Lemire's multiply-shift reduction of a SplitMix64 finaliser of the key.
    var z = key &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    return Int(z.multipliedFullWidth(by: UInt64(shards)).high)
  }

  /// The positions in `keys` owned by each shard, in order: `result[s]` lists the
  /// indices of the keys shard `s` owns, so a sorted list splits into sorted lists.
  public func split(_ keys: [UInt64]) -> [[Int]] {
    var parts = [[Int]](repeating: [], count: shards)
    for (index, key) in keys.enumerated() { parts[owner(of: key)].append(index) }
    return parts
  }
}
