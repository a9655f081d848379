import Testing
import TrainingMath
import WireProtocol

@testable import Roles

let chain3 = ModelDescriptor(name: "chain", layout: [TensorSpec(name: "w", count: 3)])

func makeServer(_ mode: ConsistencyMode, workers: Int = 1, lr: Double = 0.05) -> ParameterServer {
  ParameterServer(
    configuration: ServerConfiguration(
      mode: mode, requiredWorkers: workers, optimizer: try! OptimizerSettings(learningRate: lr),
      model: chain3,
      initialParameters: ChainModel.seedWeights))
}

let peerA = PeerID([0, 1])
let peerB = PeerID([0, 2])
let peerC = PeerID([0, 3])

let seedData = DatasetIdentity(rows: 2, fingerprint: Dataset.seed.fingerprint)

func join(_ id: UInt32, of count: Int = 2, data: DatasetIdentity = seedData) -> WireMessage {
  .join(
    Join(
      workerID: id, shard: try! Shard(index: Int(id) % count, count: count), model: chain3,
      dataset: data))
}

func push(_ id: UInt32, _ sequence: UInt64, at version: UInt64, _ gradient: [Double]) -> WireMessage
{
  .push(
    GradientPush(
      workerID: id, sequence: sequence, computedAtVersion: version,
      rows: [Int(id) % 2],
      gradient: NamedTensors(layout: chain3.layout, values: gradient)))
}

func weights(_ outgoing: [Outgoing], for peer: PeerID) -> WeightsReply? {
  for item in outgoing where item.peer == peer {
    if case .weights(let reply) = item.message { return reply }
  }
  return nil
}

func errorCode(_ outgoing: [Outgoing]) -> ErrorCode? {
  guard outgoing.count == 1, case .error(let reply) = outgoing[0].message else { return nil }
  return reply.code
}

@Suite struct ParameterServerTests {
  @Test func joinAnswersWithVersionZeroWeights() {
    let server = makeServer(.async)
    let reply = weights(server.receive(join(0), from: peerA, now: 0), for: peerA)
    #expect(reply?.version == 0)
    #expect(reply?.parameters.values == ChainModel.seedWeights)
  }

  @Test func asyncAppliesEachGradientOnArrival() throws {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    let g = [0.1, 0.2, 0.3]
    let first = weights(server.receive(push(0, 1, at: 0, g), from: peerA, now: 1), for: peerA)
    var expected = ChainModel.seedWeights
    var step2 = try Optimizer(learningRate: 0.05)
    step2.apply(gradient: g, to: &expected)
    #expect(first?.version == 1)
    #expect(first?.parameters.values == expected)
    // A gradient computed at version 0 is still applied after version 1 (async is stale-tolerant).
    let second = weights(server.receive(push(1, 1, at: 0, g), from: peerB, now: 2), for: peerB)
    var step3 = try Optimizer(learningRate: 0.05)
    step3.apply(gradient: g, to: &expected)
    #expect(second?.version == 2)
    #expect(second?.parameters.values == expected)
    #expect(server.gradientsApplied == 2)
    // One row each; a resent push is answered again, and its row not counted again.
    #expect(server.rowsApplied == 2)
    _ = server.receive(push(1, 1, at: 0, g), from: peerB, now: 3)
    #expect(server.gradientsApplied == 2 && server.rowsApplied == 2)
  }

  @Test func syncWaitsForEveryWorkerAndAveragesInWorkerOrder() throws {
    let server = makeServer(.sync, workers: 2)
    _ = server.receive(join(1), from: peerB, now: 0)
    _ = server.receive(join(0), from: peerA, now: 0)
    let early = server.receive(push(1, 1, at: 0, [1, 2, 3]), from: peerB, now: 1)
    #expect(early.isEmpty)
    #expect(server.version == 0)
    let done = server.receive(push(0, 1, at: 0, [3, 2, 1]), from: peerA, now: 2)
    let a = weights(done, for: peerA)
    let b = weights(done, for: peerB)
    var expected = ChainModel.seedWeights
    var step4 = try Optimizer(learningRate: 0.05)
    step4.apply(gradient: [2, 2, 2], to: &expected)
    #expect(a?.version == 1 && b?.version == 1)
    #expect(a?.parameters.values == expected)
    #expect(a == b)
    #expect(server.gradientsApplied == 2 && server.rowsApplied == 2)
  }

  @Test func syncFirstStepWaitsForTheRequiredWorkers() {
    let server = makeServer(.sync, workers: 2)
    _ = server.receive(join(0), from: peerA, now: 0)
    #expect(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1).isEmpty)
    let joined = server.receive(join(1), from: peerB, now: 2)
    #expect(weights(joined, for: peerB)?.version == 0)
    #expect(server.version == 0)
    let step = server.receive(push(1, 1, at: 0, [1, 1, 1]), from: peerB, now: 3)
    #expect(weights(step, for: peerA)?.version == 1)
  }

  @Test func aLeavingWorkerReleasesTheSyncBarrier() {
    let server = makeServer(.sync, workers: 2)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    #expect(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1).isEmpty)
    let out = server.receive(.leave(workerID: 1), from: peerB, now: 2)
    #expect(out.contains(Outgoing(to: peerB, .left(workerID: 1))))
    #expect(weights(out, for: peerA)?.version == 1)
    #expect(server.joinedWorkers == [0])
  }

  @Test func refusedMessagesChangeNothingButTheCounter() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
    _ = server.receive(push(0, 2, at: 1, [1, 1, 1]), from: peerA, now: 1)
    // Push 300 moves the remembered window (256) past push 1, which is then too old to tell.
    _ = server.receive(push(0, 300, at: 2, [1, 1, 1]), from: peerA, now: 1)
    let before = server.parameters
    let cases: [(WireMessage, PeerID, ErrorCode)] = [
      (push(0, 1, at: 1, [1, 1, 1]), peerA, .replayed),
      (push(0, 301, at: 5, [1, 1, 1]), peerA, .versionMismatch),
      (push(9, 1, at: 0, [1, 1, 1]), peerA, .notJoined),
      (push(0, 3, at: 1, [1, 1, 1]), peerB, .notJoined),
      (
        .push(
          GradientPush(
            workerID: 0, sequence: 71, computedAtVersion: 1,
            rows: [0],
            gradient: NamedTensors(layout: [TensorSpec(name: "w", count: 2)], values: [1, 1]))),
        peerA, .layoutMismatch
      ),
      (join(0), peerB, .duplicateWorker),
      (join(1, of: 3), peerB, .shardMismatch),
      (
        .join(
          Join(
            workerID: 5, shard: try! Shard(index: 1, count: 2),
            model: ModelDescriptor(name: "chain", layout: [TensorSpec(name: "w", count: 4)]),
            dataset: seedData)),
        peerC, .layoutMismatch
      ),
      (join(7, data: DatasetIdentity(rows: 2, fingerprint: 1)), peerC, .datasetMismatch),
      (.leave(workerID: 0), peerB, .notJoined),
      (
        .weights(
          WeightsReply(
            version: 0, parameters: NamedTensors(layout: chain3.layout, values: [0, 0, 0]))), peerA,
        .unexpectedMessage
      ),
    ]
    for (message, peer, code) in cases {
      #expect(
        errorCode(server.receive(message, from: peer, now: 2)) == code, "\(message.type) -> \(code)"
      )
    }
    #expect(errorCode(server.rejectUndecodable(.badMagic, from: peerC)) == .malformed)
    #expect(server.parameters == before)
    #expect(server.version == 3)
    #expect(server.rejected == UInt64(cases.count) + 1)
    #expect(server.joinedWorkers == [0])
  }

  @Test func aRetriedPushIsAnsweredAgainButAppliedOnce() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    let first = weights(
      server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1), for: peerA)
    let retry = weights(
      server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 2), for: peerA)
    #expect(first?.acknowledgedSequence == 1 && retry?.acknowledgedSequence == 1)
    #expect(retry == first)
    #expect(server.version == 1)
    #expect(server.gradientsApplied == 1)
    #expect(server.rejected == 0)
  }

  /// Several pushes in one frame give exactly what pushing them one by one gives,
  /// with one reply; a resent frame applies nothing twice; a frame with one bad
  /// push is refused whole and changes nothing; sync servers take one at a time.
  @Test func aFrameOfPushesIsAppliedLikeSinglePushesOrRefusedWhole() throws {
    func gradient(_ index: Int) -> [Double] { [0.1 * Double(index), -0.2, 0.3 / Double(index)] }
    func frame(_ sequences: ClosedRange<UInt64>) -> WireMessage {
      .pushes(
        sequences.map { sequence in
          guard case .push(let push) = push(0, sequence, at: 0, gradient(Int(sequence))) else {
            fatalError()
          }
          return push
        })
    }
    let oneByOne = makeServer(.async)
    _ = oneByOne.receive(join(0), from: peerA, now: 0)
    for sequence in 1...3 {
      _ = oneByOne.receive(
        push(0, UInt64(sequence), at: 0, gradient(sequence)), from: peerA, now: 1)
    }
    let batched = makeServer(.async)
    _ = batched.receive(join(0), from: peerA, now: 0)
    let replies = batched.receive(frame(1...3), from: peerA, now: 1)
    #expect(replies.count == 1)
    let reply = try #require(weights(replies, for: peerA))
    #expect(reply.acknowledgedSequence == 3 && reply.version == 3)
    #expect(batched.parameters.map(\.bitPattern) == oneByOne.parameters.map(\.bitPattern))
    #expect(batched.gradientsApplied == 3)

    // Resent (its reply was lost): answered again, nothing applied.
    #expect(weights(batched.receive(frame(1...3), from: peerA, now: 2), for: peerA) == reply)
    #expect(batched.version == 3 && batched.gradientsApplied == 3)

    // One push of another layout: the whole frame is refused, nothing changes.
    guard case .pushes(var mixed) = frame(4...6) else { return }
    mixed[1].gradient = NamedTensors(layout: [TensorSpec(name: "v", count: 3)], values: [1, 1, 1])
    let before = batched.parameters
    let refusal = batched.receive(.pushes(mixed), from: peerA, now: 3)
    guard case .error(let error) = refusal.first?.message else {
      Issue.record("expected a refusal, got \(refusal)")
      return
    }
    #expect(error.code == .layoutMismatch)
    #expect(batched.parameters == before && batched.version == 3)

    let sync = makeServer(.sync)
    _ = sync.receive(join(0, of: 1), from: peerA, now: 0)
    guard
      case .error(let syncError) = sync.receive(frame(1...2), from: peerA, now: 1).first?.message
    else {
      Issue.record("a sync server took a frame of pushes")
      return
    }
    #expect(syncError.code == .unexpectedMessage)
    #expect(sync.version == 0)
  }

  @Test func aRetriedSyncPushWaitsForItsStepWithoutDoubling() {
    let server = makeServer(.sync, workers: 2)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    #expect(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1).isEmpty)
    #expect(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 2).isEmpty)
    let step = server.receive(push(1, 1, at: 0, [3, 3, 3]), from: peerB, now: 3)
    #expect(weights(step, for: peerA)?.version == 1)
    #expect(server.gradientsApplied == 2)
  }

  @Test func aRejoiningWorkerLearnsItsLastAppliedSequence() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
    _ = server.receive(push(0, 2, at: 1, [1, 1, 1]), from: peerA, now: 2)
    _ = server.receive(.leave(workerID: 0), from: peerA, now: 3)
    let again = weights(server.receive(join(0), from: peerB, now: 4), for: peerB)
    #expect(again?.acknowledgedSequence == 2)
    #expect(errorCode(server.receive(push(0, 2, at: 2, [1, 1, 1]), from: peerB, now: 5)) == nil)
    #expect(server.version == 2)
  }

  @Test func silentWorkersAreDroppedAndReleaseTheSyncBarrier() {
    let server = makeServer(.sync, workers: 2)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    #expect(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 9_000).isEmpty)
    #expect(server.expireSilentWorkers(now: 9_500).dropped.isEmpty)
    let expired = server.expireSilentWorkers(now: 10_001)
    #expect(expired.dropped == [1])
    #expect(weights(expired.outgoing, for: peerA)?.version == 1)
    #expect(server.status.workersDead == 1)
    // The dead worker is told to rejoin when it speaks again.
    #expect(
      errorCode(server.receive(.heartbeat(workerID: 1), from: peerB, now: 10_002)) == .notJoined)
    #expect(server.receive(.heartbeat(workerID: 0), from: peerA, now: 10_003).isEmpty)
  }

  @Test func syncRefusesAGradientFromAnotherStep() {
    let server = makeServer(.sync, workers: 1)
    _ = server.receive(join(0, of: 1), from: peerA, now: 0)
    _ = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
    #expect(
      errorCode(server.receive(push(0, 2, at: 0, [1, 1, 1]), from: peerA, now: 2))
        == .versionMismatch)
  }

  @Test func aRetriedJoinFromTheSamePeerIsAnsweredAgain() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
    #expect(weights(server.receive(join(0), from: peerA, now: 2), for: peerA)?.version == 1)
    #expect(server.rejected == 0)
  }

  @Test func statusListsWorkersAndCounters() {
    let server = makeServer(.async)
    _ = server.receive(join(1), from: peerB, now: 0)
    _ = server.receive(push(1, 1, at: 0, [1, 1, 1]), from: peerB, now: 1)
    let out = server.receive(.statusRequest, from: peerC, now: 2)
    guard case .status(let status) = out.first?.message else {
      Issue.record("no status")
      return
    }
    #expect(status.version == 1)
    #expect(
      status.workers == [
        WorkerStatus(
          workerID: 1, shard: try! Shard(index: 1, count: 2), pushesApplied: 1, lastSequence: 1)
      ])
    #expect(status.parameters.values == server.parameters)
  }
}

@Suite struct AuditSubscriptionTests {
  func records(_ outgoing: [Outgoing]) -> [AuditRecord] {
    outgoing.compactMap { if case .auditRecord(let record) = $0.message { record } else { nil } }
  }

  @Test func recordsCarryTheWeightsTheGradientWasComputedAt() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    _ = server.receive(
      .auditSubscribe(AuditSubscription(every: 1, leaseMilliseconds: 1000)), from: peerC, now: 0)
    let atZero = server.parameters
    let first = records(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1))
    #expect(first.count == 1)
    #expect(first.first?.weights.values == atZero)
    #expect(first.first?.appliedAtVersion == 1)
    // Worker 1's gradient was computed at version 0 too, but arrives after version 1.
    let second = records(server.receive(push(1, 1, at: 0, [2, 2, 2]), from: peerB, now: 2))
    #expect(second.first?.weights.values == atZero)
    #expect(second.first?.computedAtVersion == 0)
  }

  @Test func everyNVersionsEachWorkerIsAuditedOnce() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    _ = server.receive(
      .auditSubscribe(AuditSubscription(every: 4, leaseMilliseconds: 100_000)), from: peerC, now: 0)
    var audited: [UInt32] = []
    var versionA: UInt64 = 0
    var versionB: UInt64 = 0
    for round in 1...8 {
      let a = server.receive(
        push(0, UInt64(round), at: versionA, [0.01, 0.01, 0.01]), from: peerA, now: 1)
      versionA = weights(a, for: peerA)!.version
      audited += records(a).map(\.workerID)
      let b = server.receive(
        push(1, UInt64(round), at: versionB, [0.01, 0.01, 0.01]), from: peerB, now: 1)
      versionB = weights(b, for: peerB)!.version
      audited += records(b).map(\.workerID)
    }
    // At subscription, then at versions 4, 8, 12: each worker once per period.
    #expect(audited.filter { $0 == 0 }.count == 4)
    #expect(audited.filter { $0 == 1 }.count == 4)
  }

  @Test func unsubscribingAndLeaseExpiryStopRecords() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    let state = server.receive(
      .auditSubscribe(AuditSubscription(every: 1, leaseMilliseconds: 100)), from: peerC, now: 0)
    #expect(
      state == [
        Outgoing(
          to: peerC, .subscription(SubscriptionState(every: 1, recordsSent: 0, recordsDropped: 0)))
      ])
    #expect(records(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 50)).count == 1)
    // The lease ran out at 100 ms.
    #expect(records(server.receive(push(0, 2, at: 1, [1, 1, 1]), from: peerA, now: 500)).isEmpty)
    _ = server.receive(
      .auditSubscribe(AuditSubscription(every: 1, leaseMilliseconds: 1000)), from: peerC, now: 600)
    let end = server.receive(
      .auditSubscribe(AuditSubscription(every: 0, leaseMilliseconds: 1)), from: peerC, now: 601)
    #expect(
      end == [
        Outgoing(
          to: peerC, .subscription(SubscriptionState(every: 0, recordsSent: 0, recordsDropped: 0)))
      ])
    #expect(records(server.receive(push(0, 3, at: 2, [1, 1, 1]), from: peerA, now: 602)).isEmpty)
  }

  @Test func droppedRecordsAreCounted() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(
      .auditSubscribe(AuditSubscription(every: 1, leaseMilliseconds: 1000)), from: peerC, now: 0)
    let out = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
    for item in out where item.peer == peerC { server.deliveryFailed(item) }
    let state = server.receive(
      .auditSubscribe(AuditSubscription(every: 1, leaseMilliseconds: 1000)), from: peerC, now: 2)
    #expect(
      state == [
        Outgoing(
          to: peerC, .subscription(SubscriptionState(every: 1, recordsSent: 0, recordsDropped: 1)))
      ])
  }
}

@Suite struct OptimizerServerTests {
  func adamServer() -> ParameterServer {
    ParameterServer(
      configuration: ServerConfiguration(
        mode: .async, requiredWorkers: 1,
        optimizer: try! OptimizerSettings(
          kind: .adam, learningRate: 0.01, schedule: .cosine(total: 50, minimum: 0.001)),
        model: chain3, initialParameters: ChainModel.seedWeights))
  }

  /// A server resumed from a checkpoint continues exactly as one that never stopped:
  /// Adam's moments, its step and the schedule's position are all restored.
  @Test func resumingKeepsTheOptimizerStateBitForBit() throws {
    let straight = adamServer()
    let interrupted = adamServer()
    for server in [straight, interrupted] { _ = server.receive(join(0), from: peerA, now: 0) }
    for sequence in 1...5 as ClosedRange<UInt64> {
      for server in [straight, interrupted] {
        _ = server.receive(
          push(0, sequence, at: sequence - 1, [0.1 * Double(sequence), -0.2, 0.3]), from: peerA,
          now: 1)
      }
    }
    let bytes = CheckpointCodec.encode(interrupted.checkpoint)
    let resumed = try ParameterServer(
      configuration: interrupted.configuration, resuming: try CheckpointCodec.decode(bytes))
    #expect(resumed.optimizer == interrupted.optimizer)
    _ = resumed.receive(join(0), from: peerB, now: 0)
    for sequence in 6...9 as ClosedRange<UInt64> {
      let gradient = [0.05, 0.1 * Double(sequence), -0.3]
      _ = straight.receive(push(0, sequence, at: sequence - 1, gradient), from: peerA, now: 2)
      _ = resumed.receive(push(0, sequence, at: sequence - 1, gradient), from: peerB, now: 2)
    }
    #expect(resumed.parameters == straight.parameters)
    #expect(resumed.status.currentLearningRate == straight.status.currentLearningRate)
    #expect(resumed.status.optimizer.hasPrefix("adam("))
  }
}

@Suite struct Float32ServerTests {
  @Test func float32TensorsStayFloat32AfterEveryUpdate() throws {
    let model = ChainModel(layers: 3, elementType: .float32)
    let descriptor = ModelCatalog.descriptor(of: model)
    let server = ParameterServer(
      configuration: ServerConfiguration(
        mode: .async, requiredWorkers: 1, optimizer: try OptimizerSettings(learningRate: 0.05),
        model: descriptor, initialParameters: model.initialWeights()))
    #expect(server.parameters.allSatisfy { Double(Float($0)) == $0 })
    #expect(server.parameters != ChainModel.seedWeights)  // the seed's decimals are not floats
    _ = server.receive(
      .join(
        Join(
          workerID: 0, shard: .whole, model: descriptor,
          dataset: DatasetIdentity(rows: 2, fingerprint: Dataset.seed.fingerprint))), from: peerA,
      now: 0)
    let gradient = NamedTensors(layout: descriptor.layout, values: [0.1234567, -0.3, 1e-3])
    _ = server.receive(
      .push(
        GradientPush(
          workerID: 0, sequence: 1, computedAtVersion: 0,
          rows: [0],
          gradient: gradient)), from: peerA, now: 1)
    #expect(server.version == 1)
    #expect(server.parameters.allSatisfy { Double(Float($0)) == $0 })
  }
}
