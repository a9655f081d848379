import Testing
import TrainingMath
import WireProtocol

@testable import Roles

@Suite struct ConsistencyTests {
  let model = ChainModel(layers: 3)

  func server(_ mode: ConsistencyMode, staleness: UInt64 = 0, workers: Int) -> ParameterServer {
    ParameterServer(
      configuration: ServerConfiguration(
        mode: mode, requiredWorkers: workers, optimizer: try! OptimizerSettings(learningRate: 0.05),
        model: chain3, initialParameters: ChainModel.seedWeights, staleness: staleness))
  }

  func workers(_ count: Int, data: Dataset, epochs: Int) throws -> [WorkerSession<ChainModel>] {
    try (0..<count).map { index in
      try WorkerSession(
        workerID: UInt32(index),
        source: .shard(try Shard(index: index, count: count), epochs: epochs),
        dataset: data, model: model)
    }
  }

  @Test(arguments: [2, 4])
  func sspWithStalenessZeroIsSyncBitForBit(workerCount: Int) throws {
    let data = try Dataset.generate(rows: 13, seed: 21, noise: 0.2)
    let sync = server(.sync, workers: workerCount)
    let ssp = server(.ssp, staleness: 0, workers: workerCount)
    _ = try runInMemory(server: sync, workers: try workers(workerCount, data: data, epochs: 20))
    _ = try runInMemory(server: ssp, workers: try workers(workerCount, data: data, epochs: 20))
    #expect(ssp.parameters == sync.parameters)
    #expect(ssp.version == sync.version)
    #expect(ssp.gradientsApplied == 13 * 20)
  }

  /// Every mode converges on the tutorial's data with 1, 2 and 4 workers, and no
  /// gradient is lost, even when shards are unequal (4 workers on 2 rows).
  @Test(arguments: [
    (ConsistencyMode.async, UInt64(0)), (.sync, 0), (.ssp, 1), (.ssp, 3),
  ])
  func everyModeConvergesWith1To4Workers(mode: ConsistencyMode, staleness: UInt64) throws {
    for count in [1, 2, 4] {
      let server = server(mode, staleness: staleness, workers: count)
      let reports = try runInMemory(
        server: server, workers: try workers(count, data: .seed, epochs: 500), auditor: PeerID([9]))
      let loss = Objective(model: model).loss(
        weights: server.parameters, samples: Dataset.seed.samples)
      #expect(loss < 1e-3, "\(mode) S=\(staleness) with \(count) workers: loss \(loss)")
      #expect(server.gradientsApplied == 1000)
      #expect(reports.filter { !$0.passed }.isEmpty)
    }
  }

  @Test func unequalShardsFinishInSyncAndSsp() throws {
    let data = try Dataset.generate(rows: 7, seed: 3, noise: 0.1)
    for (mode, staleness) in [(ConsistencyMode.sync, UInt64(0)), (.ssp, 2)] {
      let server = server(mode, staleness: staleness, workers: 3)
      _ = try runInMemory(server: server, workers: try workers(3, data: data, epochs: 10))
      #expect(server.gradientsApplied == 70)
    }
  }

  @Test func aWorkerRunsAtMostStalenessStepsAhead() {
    let server = server(.ssp, staleness: 2, workers: 2)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    // Worker 0 pushes clocks 0 and 1: answered at once (1 and 2 ahead of worker 1 at 0).
    #expect(
      weights(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1), for: peerA) != nil)
    #expect(
      weights(server.receive(push(0, 2, at: 0, [1, 1, 1]), from: peerA, now: 1), for: peerA) != nil)
    // Clock 2 would put it 3 ahead: the answer waits.
    #expect(server.receive(push(0, 3, at: 0, [1, 1, 1]), from: peerA, now: 1).isEmpty)
    #expect(server.version == 0)
    // Worker 1's first gradient completes step 1 and releases worker 0.
    let released = server.receive(push(1, 1, at: 0, [3, 3, 3]), from: peerB, now: 2)
    #expect(server.version == 1)
    #expect(weights(released, for: peerA)?.acknowledgedSequence == 3)
    #expect(weights(released, for: peerB)?.acknowledgedSequence == 1)
    // Too stale: a gradient for clock 3 computed at version 0 exceeds the bound.
    #expect(
      errorCode(server.receive(push(0, 4, at: 0, [1, 1, 1]), from: peerA, now: 3))
        == .versionMismatch)
  }
}

@Suite struct AuditCoverageTests {
  /// Audits pass in every mode, with momentum and Adam, with batches, and with a
  /// 1000-layer chain; and they still catch a flipped coordinate there.
  @Test(arguments: [ConsistencyMode.async, .sync, .ssp])
  func auditsPassWithEveryOptimizerBatchesAndDeepChains(mode: ConsistencyMode) throws {
    let cases: [(OptimizerKind, Int, Int, Double)] = [
      (.momentum, 3, 1, 0.02), (.adam, 3, 4, 0.01), (.sgd, 1000, 2, 1e-5),
    ]
    for (kind, layers, batch, rate) in cases {
      let model = ChainModel(layers: layers)
      let descriptor = ModelCatalog.descriptor(of: model)
      let server = ParameterServer(
        configuration: ServerConfiguration(
          mode: mode, requiredWorkers: 2,
          optimizer: try OptimizerSettings(kind: kind, learningRate: rate), model: descriptor,
          initialParameters: model.initialWeights(), staleness: 1))
      let data = try Dataset.generate(rows: 16, seed: 11, noise: 0.2)
      let workers = try (0..<2).map { index in
        try WorkerSession(
          workerID: UInt32(index), source: .shard(try Shard(index: index, count: 2), epochs: 3),
          dataset: data, model: model, batchSize: batch,
          fault: layers == 1000 && index == 1 ? GradientFault(parsing: "flip=500") : .none)
      }
      let reports = try runInMemory(server: server, workers: workers, auditor: PeerID([9]))
      #expect(!reports.isEmpty)
      let failed = Set(reports.filter { !$0.passed }.map(\.workerID))
      #expect(failed == (layers == 1000 ? [1] : []), "\(mode) \(kind) L=\(layers) batch \(batch)")
      #expect(reports.allSatisfy { $0.sampleRows.count == batch })
    }
  }
}
