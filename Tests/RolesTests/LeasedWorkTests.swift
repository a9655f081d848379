import Testing
import TrainingMath
import WireProtocol

@testable import Roles

@Suite struct LeasedWorkTests {
  @Test func chunksAreLeasedOnceAndTheEpochAdvancesWhenAllAreDone() {
    var work = LeasedWork(epochs: 2, chunkRows: 3)
    work.setRows(7)
    #expect(work.chunks.map(\.rows) == [0..<3, 3..<6, 6..<7])
    #expect(work.grant(to: 1) == .lease(epoch: 0, rows: 0..<3))
    #expect(work.grant(to: 1) == .lease(epoch: 0, rows: 0..<3))  // idempotent
    #expect(work.grant(to: 2) == .lease(epoch: 0, rows: 3..<6))
    #expect(work.refusal(of: [0], from: 1) == nil)
    #expect(work.refusal(of: [1], from: 1) != nil)  // out of order
    #expect(work.refusal(of: [3], from: 1) != nil)  // not its chunk
    work.markApplied([0, 1, 2], from: 1)
    #expect(work.grant(to: 1) == .lease(epoch: 0, rows: 6..<7))
    #expect(work.grant(to: 3) == .wait)
    work.markApplied([6], from: 1)
    work.markApplied([3, 4, 5], from: 2)
    #expect(work.rowsApplied == 7)
    #expect(work.grant(to: 3) == .lease(epoch: 1, rows: 0..<3))
    #expect(work.rowsApplied == 0)
  }

  @Test func theRestOfAReleasedChunkGoesToTheNextWorker() {
    var work = LeasedWork(epochs: 1, chunkRows: 4)
    work.setRows(4)
    _ = work.grant(to: 1)
    work.markApplied([0], from: 1)
    work.release(1)
    #expect(work.grant(to: 2) == .lease(epoch: 0, rows: 1..<4))
    work.markApplied([1, 2, 3], from: 2)
    #expect(work.grant(to: 2) == .finished)
    #expect(work.isFinished)
  }

  /// Random worker deaths between pushes: every row of every epoch is applied
  /// exactly once, whoever held it.
  @Test func everyRowIsAppliedExactlyOncePerEpochDespiteDeaths() {
    var generator = SplitMix64(seed: 99)
    for trial in 0..<50 {
      let rows = 1 + Int(generator.next() % 40)
      let epochs = 1 + generator.next() % 3
      var work = LeasedWork(epochs: epochs, chunkRows: 1 + Int(generator.next() % 7))
      work.setRows(rows)
      var applied = [[Int]](repeating: [], count: Int(epochs))
      var alive: [UInt32] = [0, 1, 2]
      var nextID: UInt32 = 3
      var guardCount = 0
      while !work.isFinished && guardCount < 100_000 {
        guardCount += 1
        let worker = alive[Int(generator.next() % UInt64(alive.count))]
        if generator.next() % 10 == 0 {
          work.release(worker)  // dies; a new worker joins
          alive.removeAll { $0 == worker }
          alive.append(nextID)
          nextID += 1
          continue
        }
        guard case .lease(let epoch, let rows) = work.grant(to: worker) else { continue }
        let batch = Array(rows.prefix(1 + Int(generator.next() % 3)))
        #expect(work.refusal(of: batch, from: worker) == nil)
        work.markApplied(batch, from: worker)
        applied[Int(epoch)] += batch
      }
      for epoch in applied.indices {
        #expect(applied[epoch].sorted() == Array(0..<rows), "trial \(trial) epoch \(epoch)")
      }
    }
  }
}

@Suite struct LeasedServerTests {
  func leasedServer(_ mode: ConsistencyMode, epochs: UInt64 = 2, chunkRows: Int = 1)
    -> ParameterServer
  {
    ParameterServer(
      configuration: ServerConfiguration(
        mode: mode, requiredWorkers: 1, optimizer: try! OptimizerSettings(learningRate: 0.05),
        model: chain3,
        initialParameters: ChainModel.seedWeights, deadAfterMilliseconds: 1000,
        leasedEpochs: epochs, chunkRows: chunkRows))
  }

  @Test(arguments: [ConsistencyMode.async, .sync])
  func leasedWorkersTrainEveryRowOnceAndFinish(mode: ConsistencyMode) throws {
    // Sync averages the two rows' gradients per step, so it needs twice the epochs.
    let epochs: UInt64 = mode == .sync ? 600 : 300
    let server = leasedServer(mode, epochs: epochs)
    let model = ChainModel(layers: 3)
    let workers = try (0..<3).map { index in
      try WorkerSession(workerID: UInt32(index), source: .leased, dataset: .seed, model: model)
    }
    _ = try runInMemory(server: server, workers: workers)
    #expect(server.gradientsApplied == 2 * epochs)
    #expect(server.status.epoch == epochs)
    let loss = Objective(model: model).loss(
      weights: server.parameters, samples: Dataset.seed.samples)
    #expect(loss < 1e-3)
  }

  @Test func pushesOutsideTheLeaseAreRefused() {
    let server = leasedServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    #expect(
      errorCode(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)) == .leaseLost)
    let granted = server.receive(.leaseRequest(workerID: 0), from: peerA, now: 2)
    guard case .lease(let lease) = granted.first?.message else {
      Issue.record("no lease")
      return
    }
    #expect(lease.rows == 0..<1 && lease.epoch == 0)
    #expect(lease.weights.parameters.values == ChainModel.seedWeights)
    // push() uses row = worker id = 0: inside the lease.
    #expect(
      weights(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 3), for: peerA) != nil)
  }

  @Test func checkpointRoundTripRestoresEverything() throws {
    let server = leasedServer(.async, epochs: 5)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(.leaseRequest(workerID: 0), from: peerA, now: 1)
    _ = server.receive(push(0, 1, at: 0, [0.5, 0.25, 0.125]), from: peerA, now: 2)
    let checkpoint = server.checkpoint
    let bytes = CheckpointCodec.encode(checkpoint)
    let decoded = try CheckpointCodec.decode(bytes)
    #expect(decoded == checkpoint)
    let resumed = try ParameterServer(configuration: server.configuration, resuming: decoded)
    #expect(resumed.parameters == server.parameters)
    #expect(resumed.version == 1)
    #expect(resumed.checkpoint == checkpoint)
    // The resumed server remembers push 1 of worker 0 and the row it covered.
    _ = resumed.receive(join(0), from: peerB, now: 0)
    guard
      case .lease(let lease) = resumed.receive(.leaseRequest(workerID: 0), from: peerB, now: 1)
        .first?.message
    else {
      Issue.record("no lease")
      return
    }
    #expect(lease.firstRow == 1)
    #expect(errorCode(resumed.receive(push(0, 1, at: 1, [1, 1, 1]), from: peerB, now: 2)) == nil)
    #expect(resumed.version == 1)  // answered again, not applied
  }

  @Test func everyCorruptionOfACheckpointIsDetected() throws {
    let server = leasedServer(.sync)
    let bytes = CheckpointCodec.encode(server.checkpoint)
    for index in bytes.indices {
      var corrupt = bytes
      corrupt[index] ^= 0x10
      #expect(throws: CheckpointCodec.Failure.self, "byte \(index)") {
        try CheckpointCodec.decode(corrupt)
      }
    }
    for length in 0..<bytes.count {
      #expect(throws: CheckpointCodec.Failure.self) {
        try CheckpointCodec.decode(Array(bytes.prefix(length)))
      }
    }
  }
}
