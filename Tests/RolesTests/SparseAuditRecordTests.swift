import Foundation
import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// Server shards of a sparse model with one joined worker and one audit
/// subscriber, driven message by message: pulls and pushes cut by a
/// `SparseShardRouter`, the records each shard sends kept.
final class AuditedSparseShards {
  let model = try! SparseModelSpec(kind: .logisticRegression, hashBits: 8)
  let data = smallSparseData(rows: 100, seed: 3)
  let servers: [ParameterServer]
  var router: SparseShardRouter
  let worker = PeerID([1])
  let coordinator = PeerID([2])
  let workerID: UInt32 = 3
  /// Every sparse audit record sent, in order.
  var records: [SparseAuditRecord] = []

  init(shards: Int) {
    let keyed = KeyedModel(
      model: model, optimizer: SparseOptimizerSettings(kind: .sgd, learningRate: 0.5), seed: 1)
    servers = (0..<shards).map { index in
      var configuration = ServerConfiguration(
        mode: .async, requiredWorkers: 1, optimizer: try! OptimizerSettings(learningRate: 0.1),
        model: keyed.descriptor, initialParameters: [0],
        shard: try! Shard(index: index, count: shards))
      configuration.keyed = keyed
      return ParameterServer(configuration: configuration)
    }
    router = SparseShardRouter(shards: shards)
    for server in servers {
      _ = server.receive(
        .join(
          Join(
            workerID: workerID, shard: .whole, model: keyed.descriptor,
            dataset: DatasetIdentity(rows: UInt64(data.count), fingerprint: data.fingerprint))),
        from: worker, now: 0)
    }
  }

  /// Subscribes the coordinator with `probability` and `seed`, no periods unless `every`.
  func subscribe(probability: Double, seed: UInt64, every: UInt64 = AuditSubscription.noPeriods) {
    for server in servers {
      _ = server.receive(
        .auditSubscribe(
          AuditSubscription(
            every: every, leaseMilliseconds: 60_000, probability: probability, seed: seed)),
        from: coordinator, now: 0)
    }
  }

  /// The batch of `rows`.
  func batch(_ rows: [Int]) -> SparseBatch { SparseBatch(rows: rows, data: data, model: model) }

  /// Sends one pull, through the router, from `peer`; returns the joined answer.
  func send(_ message: WireMessage, from peer: PeerID? = nil) throws -> WireMessage? {
    var answer: WireMessage?
    for (shard, part) in try router.split(message) {
      for reply in servers[shard].receive(part, from: peer ?? worker, now: 0) {
        if case .sparseAuditRecord(let record) = reply.message {
          #expect(reply.peer == coordinator)
          records.append(record)
        } else if case .error = reply.message {
          answer = reply.message
        } else if let joined = router.accept(reply.message, from: shard) {
          answer = joined
        }
      }
    }
    return answer
  }

  /// Pulls the keys of `rows` for push `sequence`; returns the rows served.
  func pull(_ sequence: UInt64, rows: [Int]) throws -> SparseRows {
    let answer = try send(
      .sparsePull(
        SparsePull(
          workerID: workerID, sequence: sequence, keys: .keys(batch(rows).keys, cacheAs: 0))))
    guard case .sparseRows(let served) = answer else {
      throw RoleError.invalidArgument("no rows: \(String(describing: answer))")
    }
    return served
  }

  /// Pushes the gradient of `rows` at `served` (times `scale`) as push `sequence`.
  @discardableResult
  func push(_ sequence: UInt64, rows: [Int], at served: SparseRows, scale: Double = 1) throws
    -> WireMessage?
  {
    var gradient: [Double] = []
    _ = model.lossAndGradient(
      of: batch(rows), data: data, values: served.values, gradient: &gradient)
    return try send(
      .sparsePush(
        SparsePush(
          workerID: workerID, sequence: sequence, computedAtVersion: served.version, rows: rows,
          keys: .keys(batch(rows).keys, cacheAs: 0), gradients: gradient.map { $0 * scale })))
  }

  /// Pulls kept for audits, over every shard.
  var kept: Int { servers.reduce(0) { $0 + $1.keyed!.served.count } }

  /// The rows of push `sequence`.
  static func rows(_ sequence: UInt64) -> [Int] {
    let start = Int(sequence % 10) * 10
    return Array(start..<(start + 10))
  }
}

@Suite struct SparseAuditRecordTests {
  /// The draw decides at pull time: rows are kept for the sampled pushes only
  /// (and the first, owed since the subscription), and each push applied sends
  /// its record, with the rows served for it, not the rows it changed since.
  @Test func servedRowsAreKeptForSampledPushesAndSentWhenApplied() throws {
    let shards = AuditedSparseShards(shards: 1)
    let subscription = AuditSubscription(
      every: AuditSubscription.noPeriods, leaseMilliseconds: 1, probability: 0.3, seed: 42)
    shards.subscribe(probability: 0.3, seed: 42)
    var served: [UInt64: SparseRows] = [:]
    var expected: [UInt64] = []
    // Pipelined: every pull before any push, as a worker with a deep pipeline.
    for sequence in UInt64(1)...30 {
      served[sequence] = try shards.pull(sequence, rows: AuditedSparseShards.rows(sequence))
      if sequence == 1 || subscription.samples(workerID: 3, sequence: sequence) {
        expected.append(sequence)
      }
      #expect(shards.kept == expected.count)
    }
    #expect(expected.count > 2 && expected.count < 29, "the draw samples some, not all")
    for sequence in UInt64(1)...30 {
      let answer = try shards.push(
        sequence, rows: AuditedSparseShards.rows(sequence), at: served[sequence]!)
      guard case .sparseAck = answer else {
        Issue.record("push \(sequence): \(String(describing: answer))")
        return
      }
    }
    #expect(shards.kept == 0)
    #expect(shards.records.map(\.sequence) == expected)
    for record in shards.records {
      let rows = AuditedSparseShards.rows(record.sequence)
      #expect(record.rows == rows)
      #expect(record.keys == shards.batch(rows).keys)
      #expect(record.values == served[record.sequence]!.values)
      #expect(record.computedAtVersion == served[record.sequence]!.version)
      #expect(record.appliedAtVersion == record.sequence)
      #expect(record.modelName == shards.model.wireName)
      #expect(record.serverShard == .whole)
      // The audit sees what the worker saw: the replay agrees bit for bit.
      let report = SparseCoordinatorLoop.audit(
        record, model: shards.model, dataset: shards.data, checks: .all, tolerance: 1e-7)
      #expect(report.passed, "\(report.text)")
    }
    #expect(shards.servers[0].auditRecordsSent == UInt64(expected.count))
  }

  /// At most 64 pulls are kept per worker, and none once it left.
  @Test func servedRowsAreBoundedAndDroppedOnLeave() throws {
    let shards = AuditedSparseShards(shards: 1)
    shards.subscribe(probability: 1, seed: 1)
    for sequence in UInt64(1)...100 {
      _ = try shards.pull(sequence, rows: AuditedSparseShards.rows(sequence))
    }
    #expect(shards.kept == SparseServedRows.perWorker)
    _ = shards.servers[0].receive(.leave(workerID: 3), from: shards.worker, now: 0)
    #expect(shards.kept == 0)
  }

  /// No subscriber: nothing is kept and nothing is sent.
  @Test func withoutASubscriberNothingIsKept() throws {
    let shards = AuditedSparseShards(shards: 2)
    let served = try shards.pull(1, rows: [0, 1, 2])
    #expect(shards.kept == 0)
    try shards.push(1, rows: [0, 1, 2], at: served)
    #expect(shards.records.isEmpty)
  }

  /// A refused push sends no record and keeps its pull's rows for the retry,
  /// which is audited; a retried applied push sends no second record.
  @Test func aRefusedPushSendsNothing() throws {
    let shards = AuditedSparseShards(shards: 1)
    shards.subscribe(probability: 1, seed: 1)
    let served = try shards.pull(1, rows: [0, 1, 2])
    let refused = try shards.send(
      .sparsePush(
        SparsePush(
          workerID: 3, sequence: 1, computedAtVersion: 0, rows: [0, 1, 2],
          keys: .keys(shards.batch([0, 1, 2]).keys, cacheAs: 0), gradients: [1])))
    guard case .error(let reply) = refused else {
      Issue.record("not refused: \(String(describing: refused))")
      return
    }
    #expect(reply.code == .layoutMismatch)
    #expect(shards.records.isEmpty)
    #expect(shards.kept == 1)
    try shards.push(1, rows: [0, 1, 2], at: served)
    try shards.push(1, rows: [0, 1, 2], at: served)  // a retry: acknowledged again
    #expect(shards.records.map(\.sequence) == [1])
    #expect(shards.records.first?.values == served.values)
  }

  /// With periods, every worker is owed a record each `every` versions.
  @Test func periodsOweEveryWorker() throws {
    let shards = AuditedSparseShards(shards: 1)
    shards.subscribe(probability: 0, seed: 0, every: 5)
    for sequence in UInt64(1)...12 {
      let rows = AuditedSparseShards.rows(sequence)
      try shards.push(sequence, rows: rows, at: try shards.pull(sequence, rows: rows))
    }
    // The first push (owed since the subscription), then the next after versions 5 and 10.
    #expect(shards.records.map(\.sequence) == [1, 6, 11])
  }

  /// A peer that has not joined may pull keys uncached (an evaluation) and
  /// counts nothing against membership; asking the server to cache is refused.
  @Test func aPeerThatHasNotJoinedMayOnlyReadUncached() throws {
    let shards = AuditedSparseShards(shards: 2)
    shards.subscribe(probability: 1, seed: 1)
    let stranger = PeerID([7])
    let keys = shards.batch([0, 1]).keys
    let read = try shards.send(
      .sparsePull(
        SparsePull(
          workerID: SparseCoordinatorLoop.pullerID, sequence: 1, keys: .keys(keys, cacheAs: 0))),
      from: stranger)
    guard case .sparseRows(let rows) = read else {
      Issue.record("not answered: \(String(describing: read))")
      return
    }
    #expect(rows.values.count == keys.count)
    #expect(shards.kept == 0)
    #expect(shards.servers.allSatisfy { $0.joinedWorkers == [3] })
    let cached = try shards.send(
      .sparsePull(
        SparsePull(
          workerID: SparseCoordinatorLoop.pullerID, sequence: 2, keys: .keys(keys, cacheAs: 5))),
      from: stranger)
    guard case .error(let reply) = cached else {
      Issue.record("not refused: \(String(describing: cached))")
      return
    }
    #expect(reply.code == .notJoined)
  }

  /// Over three shards each sends its part; the joiner puts them back together
  /// as the whole push (keys sorted, rows and gradients with them), which
  /// passes its audit; the parts of a scaled gradient fail the replay.
  @Test(arguments: [1.0, 1.001])
  func partsFromEveryShardAreJoinedAndAudited(scale: Double) throws {
    let shards = AuditedSparseShards(shards: 3)
    shards.subscribe(probability: 1, seed: 9)
    let rows = Array(0..<20)
    let served = try shards.pull(1, rows: rows)
    try shards.push(1, rows: rows, at: served, scale: scale)
    let owners = Set(shards.batch(rows).keys.map(KeyOwnership(shards: 3).owner(of:)))
    #expect(shards.records.count == owners.count)
    #expect(owners.count == 3)
    var joiner = SparseAuditJoiner()
    var whole: [SparseAuditRecord] = []
    for part in shards.records {
      #expect(part.serverShard.count == 3)
      if let record = joiner.accept(part, expectedShards: owners.count) { whole.append(record) }
    }
    #expect(whole.count == 1)
    #expect(joiner.waiting == 0)
    let record = try #require(whole.first)
    #expect(record.keys == shards.batch(rows).keys)
    #expect(record.values == served.values)
    #expect(record.serverShard == .whole)
    let report = SparseCoordinatorLoop.audit(
      record, model: shards.model, dataset: shards.data, checks: .all, tolerance: 1e-7)
    #expect(report.passed == (scale == 1), "\(report.text)")
    if scale != 1 {
      #expect(report.failedChecks.contains(.replay))
      #expect(report.confirmed)
    }
  }

  /// Parts whose fellows never come are dropped, oldest first, past the bound.
  @Test func incompletePartsAreBounded() {
    var joiner = SparseAuditJoiner()
    for sequence in UInt64(1)...300 {
      let part = SparseAuditRecord(
        workerID: 1, sequence: sequence, computedAtVersion: 0, appliedAtVersion: sequence,
        modelName: "sparse-logreg.h8", dataset: DatasetIdentity(rows: 1, fingerprint: 1),
        rows: [0], serverShard: try! Shard(index: 0, count: 2), keys: [1], values: [0],
        gradients: [0])
      #expect(joiner.accept(part, expectedShards: 2) == nil)
    }
    #expect(joiner.waiting == SparseAuditJoiner.maximumPartial)
    #expect(joiner.dropped == 300 - SparseAuditJoiner.maximumPartial)
  }

  /// A push whose keys are not its rows' fails its audit instead of stopping the coordinator.
  @Test func aPushOfOtherKeysFails() throws {
    let shards = AuditedSparseShards(shards: 1)
    let keys = shards.batch([0, 1]).keys
    let record = SparseAuditRecord(
      workerID: 3, sequence: 1, computedAtVersion: 0, appliedAtVersion: 1,
      modelName: shards.model.wireName,
      dataset: DatasetIdentity(rows: 100, fingerprint: shards.data.fingerprint), rows: [2, 3],
      serverShard: .whole, keys: keys, values: keys.map { _ in 0 },
      gradients: keys.map { _ in 0.1 })
    let report = SparseCoordinatorLoop.audit(
      record, model: shards.model, dataset: shards.data, checks: .all, tolerance: 1e-7)
    #expect(!report.passed)
    #expect(report.failedChecks == .replay)
  }
}

@Suite struct SparseHeldOutEvaluationTests {
  /// The dense line and JSON with the AUC added.
  @Test func linesCarryTheAUC() throws {
    let model = try SparseModelSpec(kind: .logisticRegression, hashBits: 8)
    let data = smallSparseData(rows: 50, seed: 5)
    let batch = SparseBatch(rows: Array(0..<50), data: data, model: model)
    let zero = SparseHeldOutEvaluation(
      model: model, test: data, keys: batch.keys, values: batch.keys.map { _ in 0 }, version: 7,
      isFinal: true)
    #expect(zero.auc == 0.5)
    #expect(abs(zero.base.result.loss - log(2.0)) < 1e-12)
    #expect(
      zero.json
        == "{\"type\":\"evaluation\",\"version\":7,\"rows\":50,\"test_loss\":\(JSON.number(zero.base.result.loss)),"
        + "\"test_accuracy\":\(JSON.number(zero.base.result.accuracy!)),\"test_auc\":0.5,\"final\":true}"
    )
    #expect(zero.text == zero.base.text + ", AUC 0.5000")
    #expect(zero.report.loss == zero.base.report.loss)
    #expect(zero.report.auc == 0.5)
  }
}

@Suite struct SparseTestPullTests {
  /// An evaluation's keys go in chunks, each a read-only pull with its own
  /// sequence number; the rows come back in key order whatever order the chunks
  /// arrive in, and an answer to another evaluation's pull is ignored.
  @Test func chunksAreReadOnlyPullsJoinedInKeyOrder() throws {
    let keys: [UInt64] = [2, 3, 5, 7, 11]
    var pull = SparseTestPull(
      keys: keys, width: 2, firstSequence: 10, statusVersion: 4, isFinal: false, now: 0,
      chunkKeys: 2)
    let messages = pull.missing()
    #expect(messages.count == 3)
    var sequences: [UInt64] = []
    for message in messages {
      guard case .sparsePull(let part) = message, case .keys(let listed, 0) = part.keys else {
        Issue.record("not a read-only pull: \(message)")
        return
      }
      #expect(part.workerID == SparseCoordinatorLoop.pullerID)
      #expect(listed.count <= 2)
      sequences.append(part.sequence)
    }
    #expect(sequences == [10, 11, 12])
    func rows(_ sequence: UInt64, _ values: [Double], version: UInt64 = 5) -> SparseRows {
      SparseRows(version: version, sequence: sequence, width: 2, values: values)
    }
    let stale = pull.accept(rows(9, [0, 0]))
    #expect(!stale)
    let last = pull.accept(rows(12, [11, 11]))
    #expect(last)
    let first = pull.accept(rows(10, [2, 2, 3, 3], version: 6))
    #expect(first)
    #expect(pull.joined == nil)
    #expect(pull.missing().count == 1)
    let middle = pull.accept(rows(11, [5, 5, 7, 7]))
    #expect(middle)
    let joined = try #require(pull.joined)
    #expect(joined.values == [2, 2, 3, 3, 5, 5, 7, 7, 11, 11])
    #expect(joined.version == 5)
  }
}
