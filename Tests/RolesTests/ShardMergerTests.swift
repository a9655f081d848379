import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// Cutting requests for, and joining answers from, server shards, with no sockets.
@Suite struct ShardMergerTests {
  /// A chain's 3 weights cut 2 + 1 over two shards.
  func twoShards() -> ShardMerger {
    ShardMerger(slices: [
      .init(range: 0..<2, layout: [TensorSpec(name: "w", count: 2)], version: 4),
      .init(range: 2..<3, layout: [TensorSpec(name: "w", count: 1)], version: 6),
    ])
  }

  func weightsReply(version: UInt64, acknowledged: UInt64, _ values: [Double]) -> WireMessage {
    .weights(
      WeightsReply(
        version: version, acknowledgedSequence: acknowledged,
        parameters: NamedTensors(
          layout: [TensorSpec(name: "w", count: values.count)], values: values)))
  }

  @Test func aPushIsCutIntoEachShardsSliceAtThatShardsVersion() throws {
    var merger = twoShards()
    let parts = try merger.split(push(0, 1, at: 99, [1, 2, 3]))
    #expect(parts.count == 2)
    guard case .push(let first) = parts[0], case .push(let second) = parts[1] else {
      Issue.record("not pushes: \(parts)")
      return
    }
    #expect(first.gradient.values == [1, 2])
    #expect(first.gradient.layout == [TensorSpec(name: "w", count: 2)])
    #expect(first.computedAtVersion == 4)
    #expect(second.gradient.values == [3])
    #expect(second.computedAtVersion == 6)
    #expect(first.sequence == 1 && second.sequence == 1)
  }

  @Test func otherRequestsGoToEveryShardAndLeasesAreRefused() throws {
    var merger = twoShards()
    #expect(try merger.split(.statusRequest) == [.statusRequest, .statusRequest])
    #expect(throws: RoleError.self) { try merger.split(.leaseRequest(workerID: 1)) }
  }

  @Test func weightsAreJoinedOnceEveryShardAnsweredAtTheOldestAcknowledgement() throws {
    var merger = twoShards()
    _ = try merger.split(push(0, 7, at: 0, [1, 2, 3]))
    merger.accept(weightsReply(version: 5, acknowledged: 7, [0.1, 0.2]), from: 0)
    #expect(merger.next() == nil)
    merger.accept(weightsReply(version: 8, acknowledged: 6, [0.3]), from: 1)
    guard case .weights(let reply) = merger.next() else {
      Issue.record("no merged weights")
      return
    }
    #expect(reply.version == 5)
    #expect(reply.acknowledgedSequence == 6)
    #expect(reply.parameters == NamedTensors(layout: chain3.layout, values: [0.1, 0.2, 0.3]))
    // The next push is computed at the versions the shards reported.
    #expect(merger.slices.map(\.version) == [5, 8])
    #expect(merger.next() == nil)
  }

  @Test func anErrorFromOneShardIsTheAnswerAndHeartbeatsKeepWhatWasCollected() throws {
    var merger = twoShards()
    _ = try merger.split(.statusRequest)
    merger.accept(weightsReply(version: 5, acknowledged: 0, [0.1, 0.2]), from: 0)
    _ = try merger.split(.heartbeat(workerID: 1))
    let refusal = WireMessage.error(ErrorReply(code: .malformed, message: "no"))
    merger.accept(refusal, from: 1)
    #expect(merger.next() == refusal)
    #expect(merger.next() == nil)
  }

  @Test func differentKindsOfAnswerAreAnError() throws {
    var merger = twoShards()
    _ = try merger.split(.statusRequest)
    merger.accept(weightsReply(version: 5, acknowledged: 0, [0.1, 0.2]), from: 0)
    merger.accept(.left(workerID: 1), from: 1)
    guard case .error(let error) = merger.next() else {
      Issue.record("mismatched answers were not an error")
      return
    }
    #expect(error.code == .unexpectedMessage)
  }

  @Test func auditRecordsOfOnePushAreJoinedOnlyWhenEveryPartArrived() {
    var merger = twoShards()
    func record(_ sequence: UInt64, computed: UInt64, applied: UInt64, _ weights: [Double])
      -> WireMessage
    {
      let layout = [TensorSpec(name: "w", count: weights.count)]
      return .auditRecord(
        AuditRecord(
          workerID: 3, sequence: sequence, computedAtVersion: computed, appliedAtVersion: applied,
          modelName: "chain", weights: NamedTensors(layout: layout, values: weights),
          dataset: DatasetIdentity(rows: 2, fingerprint: Dataset.seed.fingerprint),
          rows: [0],
          gradient: NamedTensors(layout: layout, values: weights.map { $0 * 10 })))
    }
    merger.accept(record(1, computed: 4, applied: 5, [0.1, 0.2]), from: 0)
    merger.accept(record(2, computed: 5, applied: 6, [0.1, 0.2]), from: 0)
    #expect(merger.next() == nil)
    merger.accept(record(1, computed: 3, applied: 7, [0.3]), from: 1)
    guard case .auditRecord(let joined) = merger.next() else {
      Issue.record("no joined record")
      return
    }
    #expect(joined.sequence == 1)
    #expect(joined.computedAtVersion == 3)
    #expect(joined.appliedAtVersion == 7)
    #expect(joined.weights == NamedTensors(layout: chain3.layout, values: [0.1, 0.2, 0.3]))
    #expect(joined.gradient.values == [1, 2, 3])
    #expect(merger.next() == nil)
  }

  @Test func statusesAreJoinedIntoOneWholeServer() throws {
    var merger = twoShards()
    _ = try merger.split(.statusRequest)
    func status(
      _ index: Int, version: UInt64, applied: UInt64, rejected: UInt64, _ values: [Double]
    )
      -> WireMessage
    {
      .status(
        ServerStatus(
          mode: .async, version: version, gradientsApplied: applied, rejected: rejected,
          learningRate: 0.05, requiredWorkers: 1, modelName: "chain",
          parameters: NamedTensors(
            layout: [TensorSpec(name: "w", count: values.count)], values: values),
          workers: [], workersLeft: 0, auditRecordsSent: applied,
          serverShard: try! Shard(index: index, count: 2), parameterOffset: index == 0 ? 0 : 2,
          totalParameters: 3))
    }
    merger.accept(status(0, version: 9, applied: 9, rejected: 1, [0.1, 0.2]), from: 0)
    merger.accept(status(1, version: 8, applied: 8, rejected: 2, [0.3]), from: 1)
    guard case .status(let merged) = merger.next() else {
      Issue.record("no merged status")
      return
    }
    #expect(merged.version == 8)
    #expect(merged.gradientsApplied == 8)
    #expect(merged.rejected == 3)
    #expect(merged.parameters == NamedTensors(layout: chain3.layout, values: [0.1, 0.2, 0.3]))
    #expect(merged.serverShard == Shard.whole)
    #expect(merged.parameterOffset == 0)
  }

  @Test func aServerListedOutOfOrderIsNamed() throws {
    let status = ServerStatus(
      mode: .async, version: 0, gradientsApplied: 0, rejected: 0, learningRate: 0.05,
      requiredWorkers: 1, modelName: "chain",
      parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [0.3]),
      workers: [], workersLeft: 0, auditRecordsSent: 0, serverShard: try Shard(index: 1, count: 2),
      parameterOffset: 2, totalParameters: 3)
    #expect(
      try ShardMerger.slice(of: status, at: 1, of: 2, endpoint: "tcp://b:1")
        == .init(range: 2..<3, layout: [TensorSpec(name: "w", count: 1)], version: 0))
    do {
      _ = try ShardMerger.slice(of: status, at: 0, of: 2, endpoint: "tcp://b:1")
      Issue.record("a shard listed out of order was accepted")
    } catch {
      #expect("\(error)".contains("tcp://b:1"))
    }
  }
}
