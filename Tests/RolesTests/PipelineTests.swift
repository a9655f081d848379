import Testing
import TrainingMath
import WireProtocol

@testable import Roles

@Suite struct SequenceWindowTests {
  @Test func appliesEachSequenceOnceEvenOutOfOrder() {
    let width = SequenceWindow.width  // 256
    var window = SequenceWindow()
    #expect(window.verdict(for: 1) == .new)
    window.markApplied(2)
    #expect(window.verdict(for: 1) == .new)  // overtaken, not applied yet
    #expect(window.verdict(for: 2) == .applied)
    window.markApplied(1)
    #expect(window.verdict(for: 1) == .applied)
    // A jump across word boundaries of the bitmap keeps 1 and 2, now far below.
    window.markApplied(200)
    #expect(window.verdict(for: 1) == .applied && window.verdict(for: 2) == .applied)
    #expect(window.verdict(for: 3) == .new && window.verdict(for: 199) == .new)
    window.markApplied(2 + width)
    #expect(window.verdict(for: 2) == .applied)  // exactly `width` below: still known
    #expect(window.verdict(for: 1) == .tooOld)
    #expect(window.verdict(for: 200) == .applied && window.verdict(for: 201) == .new)
    window.markApplied(201)
    #expect(window.verdict(for: 201) == .applied)
    #expect(window.highest == 2 + width)
    window.markApplied(10_000)
    #expect(window.verdict(for: 2 + width) == .tooOld)
    #expect(window.verdict(for: 9_999) == .new)
  }

  /// The 256-bit bitmap against a plain set of bit positions, over random shifts and sets.
  @Test func theBitmapShiftsAndSetsLikeASetOfBits() {
    var generator = SplitMix64(seed: 7)
    var bitmap = AppliedBitmap()
    var model = Set<Int>()
    for _ in 0..<2000 {
      if Bool.random(using: &generator) {
        let bit = Int.random(in: 0..<AppliedBitmap.width, using: &generator)
        bitmap.set(bit)
        model.insert(bit)
      } else {
        let shift = Int.random(in: 0...70, using: &generator)
        bitmap = bitmap.shiftedUp(by: shift)
        model = Set(model.map { $0 + shift }.filter { $0 < AppliedBitmap.width })
      }
      #expect((0..<AppliedBitmap.width).filter { bitmap[$0] } == model.sorted())
    }
    #expect(AppliedBitmap(words: [0, 0, 1 << 63]).significantWordCount == 3)
    #expect(AppliedBitmap(words: [0, 0, 1 << 63])[191])
  }

  @Test func anOvertakenPushIsAppliedOnceAndItsRetryAnsweredAgain() {
    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    #expect(
      weights(server.receive(push(0, 2, at: 0, [1, 1, 1]), from: peerA, now: 1), for: peerA) != nil)
    #expect(
      weights(server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 2), for: peerA) != nil)
    #expect(server.gradientsApplied == 2)
    let retry = weights(
      server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 3), for: peerA)
    #expect(retry?.acknowledgedSequence == 1)
    #expect(server.gradientsApplied == 2)
  }
}

@Suite struct PipelineTests {
  @Test(arguments: [2, 8, 64])
  func aPipelinedWorkerAppliesEveryGradientOnceAndConverges(window: Int) throws {
    let model = ChainModel(layers: 3)
    let server = makeServer(.async)
    let workers = try (0..<2).map { index in
      try WorkerSession(
        workerID: UInt32(index), source: .shard(try Shard(index: index, count: 2), epochs: 500),
        dataset: .seed, model: model, pipeline: window)
    }
    let reports = try runInMemory(server: server, workers: workers, auditor: PeerID([9]))
    #expect(server.gradientsApplied == 1000)
    #expect(workers.map(\.pushesApplied) == [500, 500])
    #expect(
      Objective(model: model).loss(weights: server.parameters, samples: Dataset.seed.samples) < 1e-3
    )
    #expect(reports.filter { !$0.passed }.isEmpty)
  }

  /// Several pushes per frame: every gradient still applied exactly once, the
  /// run converges and audits pass; a frame larger than the pipeline is refused.
  @Test(arguments: [(8, 4), (8, 8), (6, 4)])
  func framesOfPushesApplyEveryGradientOnce(window: Int, perFrame: Int) throws {
    let model = ChainModel(layers: 3)
    let data = try Dataset.generate(rows: 40, seed: 5, noise: 0.05)
    let server = makeServer(.async, lr: 0.02)
    let workers = try (0..<2).map { index in
      try WorkerSession(
        workerID: UInt32(index), source: .shard(try Shard(index: index, count: 2), epochs: 60),
        dataset: data, model: model, pipeline: window, pushesPerFrame: perFrame)
    }
    let reports = try runInMemory(server: server, workers: workers, auditor: PeerID([9]))
    #expect(server.gradientsApplied == 40 * 60)
    #expect(workers.map(\.pushesApplied) == [1200, 1200])
    #expect(Objective(model: model).loss(weights: server.parameters, samples: data.samples) < 0.05)
    #expect(!reports.isEmpty && reports.allSatisfy { $0.passed })
    #expect(throws: RoleError.self) {
      try WorkerSession(
        workerID: 0, source: .shard(.whole, epochs: 1), dataset: data, model: model,
        pipeline: window, pushesPerFrame: window + 1)
    }
  }

  /// A frame holds at most 2^17 gradient values: large models push one at a time.
  @Test func framesHoldAtMostOneMebibyteOfGradients() throws {
    func session(layers: Int) throws -> WorkerSession<ChainModel> {
      try WorkerSession(
        workerID: 0, source: .shard(.whole, epochs: 1), dataset: .seed,
        model: ChainModel(layers: layers), pipeline: 8, pushesPerFrame: 8)
    }
    #expect(try session(layers: 3).pushesPerFrame == 8)
    #expect(try session(layers: 30_000).pushesPerFrame == 4)
    #expect(try session(layers: 200_000).pushesPerFrame == 1)
  }

  @Test func pipelinesNeedFixedShards() {
    #expect(throws: RoleError.self) {
      try WorkerSession(
        workerID: 0, source: .leased, dataset: .seed, model: ChainModel(layers: 3), pipeline: 4)
    }
    #expect(throws: RoleError.self) {
      try WorkerSession(
        workerID: 0, source: .shard(try Shard(index: 0, count: 1), epochs: 1), dataset: .seed,
        model: ChainModel(layers: 3), pipeline: 257)
    }
  }
}
