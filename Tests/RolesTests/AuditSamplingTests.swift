import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// Sampled audit subscriptions (`probability`, `seed`) on their own: the draw,
/// the pushes a server owes, and two server shards owing the same ones. Seeds
/// are fixed, so the statistical bounds are checked on the same numbers every run.
@Suite struct AuditSamplingTests {
  let layout = [TensorSpec(name: "w", count: 2)]

  func subscriptions() -> AuditSubscriptions {
    AuditSubscriptions(modelName: "chain", layout: layout)
  }

  func subscribe(
    _ audits: AuditSubscriptions, every: UInt64 = AuditSubscription.noPeriods,
    probability: Double, seed: UInt64, workers: [UInt32]
  ) {
    _ = audits.subscribe(
      AuditSubscription(
        every: every, leaseMilliseconds: 1000, probability: probability, seed: seed),
      from: peerA, now: 0, version: 0, workers: workers
    ) { [0, 0] }
  }

  /// Applies push `sequence` of `workerID`, computed at the latest version, as
  /// an async server does, and returns the sequences audited.
  func apply(
    _ audits: AuditSubscriptions, workerID: UInt32, sequence: UInt64, version: inout UInt64,
    workers: [UInt32]
  ) -> [UInt64] {
    let push = GradientPush(
      workerID: workerID, sequence: sequence, computedAtVersion: version, rows: [0],
      gradient: NamedTensors(layout: layout, values: [0.5, -0.5]))
    version += 1
    var outbox: [Outgoing] = []
    audits.appendRecords(
      for: push, dataset: DatasetIdentity(rows: 2, fingerprint: 1), appliedAt: version,
      to: &outbox)
    audits.remember(version, workers: workers) { [Double(version), 0] }
    return outbox.compactMap {
      if case .auditRecord(let record) = $0.message { record.sequence } else { nil }
    }
  }

  /// The draw is uniform enough: over 8 workers × 20,000 pushes each worker's
  /// share below 0.05 is within 20% of it (about 6 standard deviations).
  @Test func eachWorkerIsDrawnAtTheProbability() {
    let probability = 0.05
    for seed: UInt64 in [1, 0xDEAD_BEEF] {
      for worker: UInt32 in 0..<8 {
        let sampled = (1...20_000).filter {
          AuditSubscription.draw(seed: seed, workerID: worker, sequence: UInt64($0))
            < probability
        }.count
        #expect(abs(Double(sampled) - 1000) < 200, "seed \(seed) worker \(worker): \(sampled)")
      }
    }
    #expect(
      AuditSubscription.draw(seed: 1, workerID: 0, sequence: 1)
        != AuditSubscription.draw(seed: 2, workerID: 0, sequence: 1))
    #expect(
      AuditSubscription.draw(seed: 1, workerID: 0, sequence: 1)
        != AuditSubscription.draw(seed: 1, workerID: 1, sequence: 1))
  }

  /// A server audits exactly the pushes the draw names (and each worker's first,
  /// owed at subscription), so each worker at about the probability whatever its
  /// speed: here worker 0 pushes three times as often as worker 1.
  @Test func theServerAuditsThePushesTheDrawSamples() {
    let (probability, seed, workers): (Double, UInt64, [UInt32]) = (0.04, 42, [0, 1])
    let audits = subscriptions()
    subscribe(audits, probability: probability, seed: seed, workers: workers)
    var version: UInt64 = 0
    var audited: [UInt32: [UInt64]] = [0: [], 1: []]
    var sequences: [UInt32: UInt64] = [0: 0, 1: 0]
    for step in 0..<40_000 {
      let worker: UInt32 = step % 4 == 3 ? 1 : 0
      sequences[worker]! += 1
      audited[worker]! += apply(
        audits, workerID: worker, sequence: sequences[worker]!, version: &version,
        workers: workers)
    }
    let sampling = AuditSubscription(
      every: AuditSubscription.noPeriods, leaseMilliseconds: 1, probability: probability,
      seed: seed)
    for worker in workers {
      let expected =
        [1] + (2...sequences[worker]!).filter { sampling.samples(workerID: worker, sequence: $0) }
      #expect(audited[worker] == expected)
      let rate = Double(audited[worker]!.count) / Double(sequences[worker]!)
      #expect(abs(rate - probability) < 0.25 * probability, "worker \(worker): \(rate)")
    }
  }

  /// Two server shards given the same subscription owe the same pushes, even
  /// when the workers' pushes reach them interleaved differently.
  @Test func twoShardsOweTheSamePushes() {
    let workers: [UInt32] = [0, 1, 2]
    let shards = [subscriptions(), subscriptions()]
    for shard in shards { subscribe(shard, probability: 0.1, seed: 7, workers: workers) }
    var audited: [[String]] = [[], []]
    for (index, shard) in shards.enumerated() {
      var version: UInt64 = 0
      for round in UInt64(1)...3000 {
        // Shard 0 sees workers 0, 1, 2 in turn; shard 1 sees them in reverse.
        for worker in index == 0 ? workers : workers.reversed() {
          audited[index] +=
            apply(shard, workerID: worker, sequence: round, version: &version, workers: workers)
            .map { "\(worker)/\($0)" }
        }
      }
    }
    #expect(Set(audited[0]) == Set(audited[1]))
    #expect(audited[0].count > 3 * 3000 / 20)
  }

  /// With nothing owed, no weights are kept: a push whose successor is not
  /// sampled leaves the history empty, and with probability 0 and no periods
  /// only each worker's first push (owed at subscription) is audited.
  @Test func noWeightsAreKeptWhenNothingIsOwed() {
    let audits = subscriptions()
    subscribe(audits, probability: 0, seed: 3, workers: [0])
    var version: UInt64 = 0
    #expect(apply(audits, workerID: 0, sequence: 1, version: &version, workers: [0]) == [1])
    #expect(audits.history.isEmpty)
    for sequence in UInt64(2)...100 {
      #expect(apply(audits, workerID: 0, sequence: sequence, version: &version, workers: [0]) == [])
      #expect(audits.history.isEmpty)
    }

    let sampled = subscriptions()
    let sampling = AuditSubscription(
      every: AuditSubscription.noPeriods, leaseMilliseconds: 1, probability: 0.3, seed: 5)
    subscribe(sampled, probability: 0.3, seed: 5, workers: [0])
    version = 0
    for sequence in UInt64(1)...200 {
      _ = apply(sampled, workerID: 0, sequence: sequence, version: &version, workers: [0])
      let owed = sampling.samples(workerID: 0, sequence: sequence + 1)
      #expect(sampled.history.isEmpty == !owed, "after push \(sequence)")
    }
  }

  /// Periods go on beside the sampling; `noPeriods` has none.
  @Test func periodsAndNoPeriods() {
    #expect(AuditSubscription(every: 10, leaseMilliseconds: 1).hasPeriods)
    #expect(!AuditSubscription(every: AuditSubscription.noPeriods, leaseMilliseconds: 1).hasPeriods)
    let audits = subscriptions()
    subscribe(audits, every: 4, probability: 0, seed: 0, workers: [0])
    var version: UInt64 = 0
    var audited: [UInt64] = []
    for sequence in UInt64(1)...12 {
      audited += apply(audits, workerID: 0, sequence: sequence, version: &version, workers: [0])
    }
    // The first push, then the one after each version that is a multiple of 4.
    #expect(audited == [1, 5, 9])
  }

  /// A worker that joins after the subscription is audited early: the push after its
  /// first one seen, even with nothing sampled.
  @Test func aWorkerJoiningLaterIsAuditedAfterItsFirstPush() {
    let audits = subscriptions()
    subscribe(audits, probability: 0, seed: 1, workers: [])
    var version: UInt64 = 0
    var audited: [UInt64] = []
    for sequence in UInt64(1)...10 {
      audited += apply(audits, workerID: 4, sequence: sequence, version: &version, workers: [4])
    }
    #expect(audited == [2])
    audits.forget(4)  // left; back under the same id, it is new again
    for sequence in UInt64(11)...20 {
      audited += apply(audits, workerID: 4, sequence: sequence, version: &version, workers: [4])
    }
    #expect(audited == [2, 12])
  }
}
