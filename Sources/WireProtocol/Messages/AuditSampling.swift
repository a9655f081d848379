import TrainingMath

// The sampled part of an audit subscription: which pushes a subscription with a
// probability and a seed owes, computed the same way by every server shard, the
// coordinator and the tests.

extension AuditSubscription {
  /// `every` for a subscription with no periods: only sampled pushes (and each
  /// worker's next push right after subscribing) are owed. (`every` 0 ends a
  /// subscription, so "no periods" is the one period that is never reached.)
  public static let noPeriods = UInt64.max

  /// Whether the subscription owes records every `every` versions.
  public var hasPeriods: Bool { every != 0 && every != Self.noPeriods }

  /// The draw for push `sequence` of worker `workerID` under `seed`, uniform in
  /// [0, 1): SplitMix64's output for the state `h ^ sequence`, where `h` is its
  /// output for the state `seed ^ workerID`. It depends on these three numbers
  /// only, so server shards, restarts and the tests all draw the same.
  public static func draw(seed: UInt64, workerID: UInt32, sequence: UInt64) -> Double {
    var perWorker = SplitMix64(seed: seed ^ UInt64(workerID))
    var perPush = SplitMix64(seed: perWorker.next() ^ sequence)
    return perPush.nextUnit()
  }

  /// Whether push `sequence` of `workerID` is sampled: its draw is below `probability`.
  /// A server owes the subscriber a worker's next push after applying push q when
  /// push q + 1 is sampled.
  public func samples(workerID: UInt32, sequence: UInt64) -> Bool {
    probability > 0
      && Self.draw(seed: seed, workerID: workerID, sequence: sequence) < probability
  }
}
