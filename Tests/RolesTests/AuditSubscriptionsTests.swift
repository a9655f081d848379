import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// The audit subscriptions on their own: no server, no sockets.
@Suite struct AuditSubscriptionsTests {
  let layout = [TensorSpec(name: "w", count: 2)]

  func subscriptions() -> AuditSubscriptions {
    AuditSubscriptions(modelName: "chain", layout: layout)
  }

  func subscribe(
    _ audits: AuditSubscriptions, _ peer: PeerID, every: UInt64, lease: UInt32 = 1000,
    now: UInt64 = 0, version: UInt64 = 0, workers: [UInt32] = [0, 1],
    weights: [Double] = [1, 2]
  ) -> SubscriptionState {
    audits.subscribe(
      AuditSubscription(every: every, leaseMilliseconds: lease), from: peer, now: now,
      version: version, workers: workers
    ) { weights }
  }

  func gradient(_ workerID: UInt32, at version: UInt64) -> GradientPush {
    GradientPush(
      workerID: workerID, sequence: 1, computedAtVersion: version,
      rows: [0],
      gradient: NamedTensors(layout: layout, values: [0.5, -0.5]))
  }

  /// The records owed of `push`, applied at `version`.
  func records(_ audits: AuditSubscriptions, _ push: GradientPush, appliedAt version: UInt64)
    -> [Outgoing]
  {
    var outbox: [Outgoing] = []
    audits.appendRecords(
      for: push, dataset: DatasetIdentity(rows: 2, fingerprint: Dataset.seed.fingerprint),
      appliedAt: version, to: &outbox)
    return outbox
  }

  /// A new subscriber is owed each joined worker's next gradient, with the
  /// weights it was computed at; once paid, nothing is owed or kept.
  @Test func aNewSubscriberGetsEachWorkersNextGradientOnce() throws {
    let audits = subscriptions()
    _ = subscribe(audits, peerA, every: 10, version: 3, weights: [1, 2])
    #expect(audits.history.map { $0.version } == [3])
    audits.remember(4, workers: [0, 1]) { [5, 6] }
    let sent = records(audits, gradient(0, at: 3), appliedAt: 5)
    #expect(sent.count == 1 && sent.first?.peer == peerA)
    guard case .auditRecord(let record) = sent.first?.message else {
      Issue.record("no record")
      return
    }
    #expect(record.weights == NamedTensors(layout: layout, values: [1, 2]))
    #expect(record.modelName == "chain")
    #expect(record.appliedAtVersion == 5 && record.computedAtVersion == 3)
    #expect(records(audits, gradient(0, at: 4), appliedAt: 6).isEmpty)
    #expect(records(audits, gradient(1, at: 4), appliedAt: 6).count == 1)
    #expect(audits.recordsSent == 2)
    audits.remember(6, workers: [0, 1]) { [7, 8] }
    #expect(audits.history.isEmpty)
  }

  /// Every `every` versions each worker is owed again.
  @Test func everyPeriodOwesEachWorkerAgain() {
    let audits = subscriptions()
    _ = subscribe(audits, peerA, every: 4, workers: [0])
    #expect(records(audits, gradient(0, at: 0), appliedAt: 1).count == 1)
    audits.remember(1, workers: [0]) { [0, 0] }
    audits.remember(2, workers: [0]) { [0, 0] }
    #expect(records(audits, gradient(0, at: 2), appliedAt: 3).isEmpty)
    audits.remember(4, workers: [0]) { [4, 4] }
    #expect(audits.subscribers[peerA]?.owed == [0])
    #expect(audits.history.map { $0.version } == [4])
    #expect(records(audits, gradient(0, at: 4), appliedAt: 5).count == 1)
  }

  /// A gradient computed at weights not kept is not audited: its next one is.
  @Test func aGradientAtWeightsNotKeptWaitsForTheNext() {
    let audits = subscriptions()
    _ = subscribe(audits, peerA, every: 100, version: 7, workers: [0])
    #expect(records(audits, gradient(0, at: 6), appliedAt: 8).isEmpty)
    #expect(audits.subscribers[peerA]?.owed == [0])
  }

  /// Ending a subscription, or letting its lease run out, stops records and
  /// drops the kept weights.
  @Test func unsubscribingAndExpiryEndTheSubscription() {
    let audits = subscriptions()
    _ = subscribe(audits, peerA, every: 5, lease: 100, now: 0)
    let ended = subscribe(audits, peerA, every: 0, now: 50)
    #expect(ended.every == 0)
    #expect(audits.subscribers.isEmpty && audits.history.isEmpty)
    _ = subscribe(audits, peerB, every: 5, lease: 100, now: 100)
    audits.expire(now: 200)
    #expect(audits.subscribers[peerB] != nil)
    audits.expire(now: 201)
    #expect(audits.subscribers.isEmpty && audits.history.isEmpty)
    #expect(records(audits, gradient(0, at: 0), appliedAt: 1).isEmpty)
  }

  /// A record that could not be delivered counts as dropped, not sent, and the
  /// renewal reports it.
  @Test func undeliveredRecordsCountAsDropped() {
    let audits = subscriptions()
    _ = subscribe(audits, peerA, every: 5)
    let sent = records(audits, gradient(0, at: 0), appliedAt: 1)
    audits.deliveryFailed(sent[0])
    audits.deliveryFailed(Outgoing(to: peerA, .left(workerID: 0)))
    #expect(audits.recordsSent == 0)
    let renewed = subscribe(audits, peerA, every: 5)
    #expect(renewed.recordsSent == 0 && renewed.recordsDropped == 1)
  }

  /// A worker that left is owed to nobody; several subscribers each get their
  /// own record, in the order of their peer ids.
  @Test func recordsGoToEachSubscriberOwedOne() {
    let audits = subscriptions()
    _ = subscribe(audits, peerB, every: 5)
    _ = subscribe(audits, peerA, every: 5)
    audits.forget(1)
    #expect(records(audits, gradient(1, at: 0), appliedAt: 1).isEmpty)
    #expect(records(audits, gradient(0, at: 0), appliedAt: 1).map(\.peer) == [peerA, peerB])
  }
}
