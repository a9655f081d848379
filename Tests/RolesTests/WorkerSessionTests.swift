import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// Drives workers and a server in memory, round-robin, with no sockets.
func runInMemory<Model: DifferentiableModel>(
  server: ParameterServer, workers: [WorkerSession<Model>], auditor: PeerID? = nil,
  observe: (WireMessage) -> Void = { _ in },
  audit: ((AuditRecord) throws -> AuditReport)? = nil
) throws -> [AuditReport] {
  let peers = workers.indices.map { PeerID([1, UInt8($0)]) }
  var reports: [AuditReport] = []
  var inbox: [[WireMessage]] = Array(repeating: [], count: workers.count)
  func deliver(_ outgoing: [Outgoing]) throws {
    for item in outgoing {
      if let index = peers.firstIndex(of: item.peer) { inbox[index].append(item.message) }
      if item.peer == auditor, case .auditRecord(let record) = item.message {
        reports.append(
          try audit?(record)
            ?? AuditReport.audit(record, tolerance: 1e-7, dataset: workers[0].dataset))
      }
    }
  }
  if let auditor {
    try deliver(
      server.receive(
        .auditSubscribe(AuditSubscription(every: 1, leaseMilliseconds: .max)), from: auditor, now: 0
      ))
  }
  for (index, worker) in workers.enumerated() {
    try deliver(server.receive(worker.start(), from: peers[index], now: 0))
  }
  var finished = Set<Int>()
  var idle = 0
  while finished.count < workers.count {
    var progressed = false
    for index in workers.indices where !finished.contains(index) && !inbox[index].isEmpty {
      let reply = inbox[index].removeFirst()
      progressed = true
      switch try workers[index].receive(reply) {
      case .finished: finished.insert(index)
      case .ignore: break
      case .send(let message), .sendAfter(_, let message):
        observe(message)
        try deliver(server.receive(message, from: peers[index], now: 1))
      case .sendEach(let messages):
        for message in messages {
          observe(message)
          try deliver(server.receive(message, from: peers[index], now: 1))
        }
      }
    }
    idle = progressed ? 0 : idle + 1
    if idle > 2 { throw RoleError.invalidArgument("deadlock") }
  }
  return reports
}

/// The rows of every push sent, by worker and sequence.
final class PushRecorder {
  var rows: [UInt32: [UInt64: [Int]]] = [:]

  func record(_ message: WireMessage) {
    switch message {
    case .push(let push): rows[push.workerID, default: [:]][push.sequence] = push.rows
    case .pushes(let pushes):
      for push in pushes { rows[push.workerID, default: [:]][push.sequence] = push.rows }
    default: break
    }
  }
}

@Suite struct WorkerSessionTests {
  let model = ChainModel(layers: 3)

  @Test func oneSyncWorkerReproducesTheSeedWeightsExactly() throws {
    let server = makeServer(.sync, workers: 1)
    let worker = try WorkerSession(
      workerID: 0, source: .shard(Shard(index: 0, count: 1), epochs: 160), dataset: .seed,
      model: model)
    _ = try runInMemory(server: server, workers: [worker])
    #expect(server.parameters == [0.26834251180335367, 0.2681246232434451, -0.5366628787432715])
    #expect(server.version == 320)
    #expect(server.joinedWorkers.isEmpty)
    #expect(worker.pushesApplied == 320)
  }

  @Test func twoAsyncWorkersConvergeAndEveryAuditPasses() throws {
    let server = makeServer(.async, workers: 2)
    let workers = try (0..<2).map { index in
      let shard = try Shard(index: index, count: 2)
      return try WorkerSession(
        workerID: UInt32(index), source: .shard(shard, epochs: 500), dataset: .seed, model: model)
    }
    let reports = try runInMemory(server: server, workers: workers, auditor: PeerID([9]))
    let loss = Objective(model: model).loss(
      weights: server.parameters, samples: Dataset.seed.samples)
    #expect(loss < 1e-3)
    #expect(reports.count > 100)
    #expect(reports.filter { !$0.passed }.isEmpty)
    #expect(Set(reports.map(\.workerID)) == [0, 1])
  }

  @Test(arguments: ["scale=1.000001", "flip=1", "stale=1", "scale=0.5,flip=2"])
  func faultyWorkersAreFlagged(fault: String) throws {
    let server = makeServer(.async, workers: 2)
    let data = try Dataset.generate(rows: 20, seed: 4, noise: 0.3)
    let workers = try (0..<2).map { index in
      let shard = try Shard(index: index, count: 2)
      return try WorkerSession(
        workerID: UInt32(index), source: .shard(shard, epochs: 5), dataset: data, model: model,
        fault: index == 1 ? GradientFault(parsing: fault) : .none)
    }
    let reports = try runInMemory(server: server, workers: workers, auditor: PeerID([9]))
    let failed = Set(reports.filter { !$0.passed }.map(\.workerID))
    #expect(failed == [1])
  }

  @Test func anEmptyShardJoinsAndLeaves() throws {
    let server = makeServer(.sync, workers: 3)
    let workers = try (0..<3).map { index in
      let shard = try Shard(index: index, count: 3)
      return try WorkerSession(
        workerID: UInt32(index), source: .shard(shard, epochs: 10), dataset: .seed, model: model)
    }
    #expect(workers[0].shardRows.isEmpty)
    _ = try runInMemory(server: server, workers: workers)
    #expect(server.version == 10)
  }

  /// With a shuffle seed, each worker pushes every row of its shard exactly
  /// once per epoch, in an order that changes from epoch to epoch.
  @Test(arguments: [ConsistencyMode.async, .sync])
  func shuffledWorkersPushEveryRowOncePerEpoch(mode: ConsistencyMode) throws {
    let server = makeServer(mode, workers: 3)
    let data = try Dataset.generate(rows: 50, seed: 4, noise: 0.3)
    let workers = try (0..<3).map { index in
      try WorkerSession(
        workerID: UInt32(index), source: .shard(Shard(index: index, count: 3), epochs: 4),
        dataset: data, model: model, batchSize: 4, shuffleSeed: 9)
    }
    // Each push's rows, by worker and sequence, read where the server receives them.
    let recorder = PushRecorder()
    _ = try runInMemory(server: server, workers: workers, observe: recorder.record)
    for worker in workers {
      let own = worker.shardRows
      let perEpoch = (own.count + 3) / 4
      let pushes = recorder.rows[worker.workerID] ?? [:]
      #expect(pushes.count == 4 * perEpoch)
      var orders: [[Int]] = []
      for epoch in 0..<4 {
        let first = UInt64(epoch * perEpoch + 1)
        let rows = (first..<first + UInt64(perEpoch)).flatMap { pushes[$0] ?? [] }
        #expect(rows.sorted() == Array(own), "worker \(worker.workerID), epoch \(epoch)")
        orders.append(rows)
      }
      #expect(Set(orders).count == 4, "worker \(worker.workerID): a new order every epoch")
    }
  }

  @Test func aLeasedWorkerRefusesToShuffle() throws {
    #expect(throws: RoleError.self) {
      try WorkerSession(
        workerID: 0, source: .leased, dataset: .seed, model: model, shuffleSeed: 1)
    }
  }

  @Test func batchesPushTheMeanGradientOfTheirSamples() throws {
    let server = makeServer(.async)
    let data = try Dataset.generate(rows: 10, seed: 8, noise: 0.1)
    let worker = try WorkerSession(
      workerID: 0, source: .shard(Shard(index: 0, count: 1), epochs: 1), dataset: data,
      model: model, batchSize: 4)
    guard
      case .send(.push(let push)) = try worker.receive(
        .weights(WeightsReply(version: 0, parameters: server.namedParameters)))
    else {
      Issue.record("no push")
      return
    }
    #expect(push.rows == [0, 1, 2, 3])
    #expect(
      push.gradient.values
        == Objective(model: model).gradient(
          weights: ChainModel.seedWeights, samples: Array(data.samples[0..<4])))
  }

  /// After a rejoin the worker learns which of its pushes in flight the server
  /// has: one overtaken by a later push (not applied) has its rows pushed again;
  /// applied ones are not.
  @Test(arguments: [(UInt64(0), [0]), (UInt64(1), [])])
  func aRejoiningWorkerPushesAgainOnlyWhatTheServerLacks(appliedBelow: UInt64, redone: [Int])
    throws
  {
    let session = try WorkerSession(
      workerID: 0, source: .shard(.whole, epochs: 1), dataset: .seed, model: ChainModel(layers: 3),
      pipeline: 2)
    var notices: [String] = []
    session.notice = { notices.append($0) }
    let weights = NamedTensors(layout: chain3.layout, values: ChainModel.seedWeights)
    _ = session.start()
    guard
      case .sendEach(let pushes) = try session.receive(
        .weights(WeightsReply(version: 0, parameters: weights)))
    else {
      Issue.record("expected a window of two pushes")
      return
    }
    #expect(pushes.count == 2)
    // The server restarted; it has push 2 and, per the bitmap, maybe push 1.
    guard
      case .send(.join) = try session.receive(
        .error(ErrorReply(code: .notJoined, message: "restarted")))
    else {
      Issue.record("expected a rejoin")
      return
    }
    let step = try session.receive(
      .weights(
        WeightsReply(
          version: 2, acknowledgedSequence: 2, appliedBelow: AppliedBitmap(words: [appliedBelow]),
          parameters: weights)))
    var rows: [Int] = []
    if case .send(.push(let push)) = step { rows = push.rows }
    #expect(rows == redone)
    #expect(session.pushesApplied == UInt64(2 - redone.count))
    #expect(
      notices
        == (redone.isEmpty
          ? [] : ["rejoined the server at version 2: pushing again 1 pushes it never applied"]))
  }

  @Test func serverRefusalsSurfaceAsErrors() throws {
    let worker = try WorkerSession(
      workerID: 0, source: .shard(Shard(index: 0, count: 1), epochs: 1), dataset: .seed,
      model: model)
    #expect(throws: RoleError.refused(ErrorReply(code: .duplicateWorker, message: "x"))) {
      try worker.receive(.error(ErrorReply(code: .duplicateWorker, message: "x")))
    }
    #expect(throws: RoleError.self) { try worker.receive(.statusRequest) }
  }

  @Test func faultSpecificationsParseAndReject() throws {
    let fault = try GradientFault(parsing: "scale=2,flip=0,flip=2,stale=3")
    #expect(fault.scale == 2 && fault.flipped == [0, 2] && fault.staleness == 3)
    var gradient = [1.0, 2.0, 3.0]
    fault.corrupt(&gradient)
    #expect(gradient == [-2, 4, -6])
    for bad in ["scale", "scale=x", "flip=-1", "stale=1001", "noise=1", "scale=nan"] {
      #expect(throws: RoleError.self, "\(bad)") { try GradientFault(parsing: bad) }
    }
    #expect(throws: RoleError.self) {
      try WorkerSession(
        workerID: 0, source: .shard(Shard(index: 0, count: 1), epochs: 1), dataset: .seed,
        model: model, fault: GradientFault(parsing: "flip=3"))
    }
  }
}

/// Issue 9 item 6: a diverged worker says so instead of pushing a NaN gradient.
@Suite struct WorkerDivergenceTests {
  @Test func aWorkerWhoseLossOverflowsLeavesAndSaysWhere() throws {
    // lr 1e308 sends the weights to about ±1e307 at the first step: the next loss is infinite.
    let server = makeServer(.sync, workers: 1, lr: 1e308)
    let worker = try WorkerSession(
      workerID: 0, source: .shard(Shard(index: 0, count: 1), epochs: 5), dataset: .seed,
      model: ChainModel(layers: 3))
    _ = try runInMemory(server: server, workers: [worker])
    #expect(worker.divergence == .diverged(version: 1, what: "the loss became infinite"))
    #expect(server.status.gradientsApplied == 1)
    #expect(server.status.rejected == 0)  // the infinite gradient was never pushed
    #expect(server.status.workers.isEmpty)  // it left
    #expect(
      "\(worker.divergence!)"
        == "training diverged at version 1: the loss became infinite; try a lower --lr")
  }
}
