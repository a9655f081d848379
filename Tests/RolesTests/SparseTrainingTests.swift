import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// A small click-like data set: 10 ids per row out of 200, labels from a fixed teacher.
func smallSparseData(rows: Int = 400, seed: UInt64 = 7) -> SparseDataset {
  var generator = SplitMix64(seed: seed)
  var starts = [0]
  var ids: [UInt64] = []
  var values: [Double] = []
  var labels: [Double] = []
  for _ in 0..<rows {
    var row = Set<UInt64>()
    while row.count < 10 { row.insert(generator.next() % 200) }
    let score = row.reduce(-0.5) { $0 + ($1 % 3 == 0 ? 0.6 : -0.2) }
    for id in row.sorted() {
      ids.append(id)
      values.append(1)
    }
    starts.append(ids.count)
    labels.append(generator.nextUnit() < BinaryLogLoss.probability(score: score) ? 1 : 0)
  }
  return SparseDataset(rowStarts: starts, featureIDs: ids, values: values, labels: labels)
}

/// Server shards of a keyed model and one worker session, wired through a
/// `SparseShardRouter` with every message delivered at once.
final class SparseCluster {
  let servers: [ParameterServer]
  var router: SparseShardRouter
  let peer = PeerID([9, 9])

  init(
    model: SparseModelSpec, shards: Int,
    optimizer: SparseOptimizerSettings = SparseOptimizerSettings(kind: .adagrad, learningRate: 0.3)
  ) {
    let keyed = KeyedModel(model: model, optimizer: optimizer, seed: 11)
    servers = (0..<shards).map { index in
      var configuration = ServerConfiguration(
        mode: .async, requiredWorkers: 1, optimizer: try! OptimizerSettings(learningRate: 0.1),
        model: keyed.descriptor, initialParameters: Array(repeating: 0, count: model.rowWidth),
        shard: try! Shard(index: index, count: shards))
      configuration.keyed = keyed
      return ParameterServer(configuration: configuration)
    }
    router = SparseShardRouter(shards: shards)
  }

  /// Runs `session` to its end; returns the messages each server refused.
  func run(_ session: SparseWorkerSession) throws -> Int {
    let timing = RequestPolicy.Timing(
      retryMilliseconds: 1000, replyTimeoutMilliseconds: 60_000, stopGraceMilliseconds: 1000)
    var queue = [session.start(now: 0, timing: timing, server: "test")]
    var refusals = 0
    var steps = 0
    while !queue.isEmpty, steps < 1_000_000 {
      steps += 1
      let message = queue.removeFirst()
      var answers: [WireMessage] = []
      if SparseShardRouter.routes(message) {
        for (shard, part) in try router.split(message) {
          for reply in servers[shard].receive(part, from: peer, now: 0) {
            if case .error = reply.message {
              refusals += 1
              answers.append(reply.message)
            }
            if let joined = router.accept(reply.message, from: shard) { answers.append(joined) }
          }
        }
      } else {
        let replies = servers.map { $0.receive(message, from: peer, now: 0) }
        if let first = replies.first?.first { answers.append(first.message) }
      }
      for answer in answers { queue += try session.receive(answer, now: 0, stop: false) }
    }
    return refusals
  }

  /// Every shard's rows, by key.
  var rows: [UInt64: [Double]] {
    var all: [UInt64: [Double]] = [:]
    for server in servers {
      server.keyed!.table.forEachRowInKeyOrder { key, values, _ in all[key] = Array(values) }
    }
    return all
  }
}

@Suite struct SparseTrainingTests {
  let data = smallSparseData()
  let logreg = try! SparseModelSpec(kind: .logisticRegression, hashBits: 12)

  func session(_ model: SparseModelSpec, epochs: Int = 3, pipeline: Int = 1) -> SparseWorkerSession
  {
    SparseWorkerSession(
      workerID: 0, shard: .whole, epochs: epochs, dataset: data, model: model, batchSize: 20,
      pipeline: pipeline, shuffleSeed: 5)
  }

  @Test func trainingLowersTheLoss() throws {
    let cluster = SparseCluster(model: logreg, shards: 1)
    let worker = session(logreg, epochs: 5)
    #expect(try cluster.run(worker) == 0)
    #expect(worker.isFinished)
    #expect(worker.pushesApplied == 5 * 20)
    #expect(cluster.servers[0].version == 100)
    let all = SparseBatch(rows: Array(0..<data.count), data: data, model: logreg)
    let rows = cluster.rows
    let trained = all.keys.flatMap { rows[$0] ?? [0] }
    let start = [Double](repeating: 0, count: all.keys.count)
    #expect(
      logreg.loss(of: all, data: data, values: trained) < 0.9
        * logreg.loss(of: all, data: data, values: start))
  }

  /// Each key's updates come in the same order whichever shard owns it, so two
  /// shards end with the rows one server ends with, bit for bit.
  @Test(arguments: [1, 2, 3])
  func shardsHoldWhatOneServerHolds(factors: Int) throws {
    let model = try SparseModelSpec(kind: .factorizationMachine(factors: factors), hashBits: 10)
    let one = SparseCluster(model: model, shards: 1)
    let three = SparseCluster(model: model, shards: 3)
    #expect(try one.run(session(model)) == 0)
    #expect(try three.run(session(model)) == 0)
    #expect(one.rows == three.rows)
    #expect(three.servers.allSatisfy { $0.keyed!.table.count > 0 })
    #expect(
      three.servers.reduce(0) { $0 + $1.keyed!.table.count } == one.servers[0].keyed!.table.count)
    // Pushes named their pull's cached list.
    #expect(three.servers.allSatisfy { $0.keyed!.cacheHits == $0.keyed!.pushes })
  }

  @Test func pipelinedWorkerTrainsToo() throws {
    let cluster = SparseCluster(model: logreg, shards: 2)
    let worker = session(logreg, pipeline: 4)
    #expect(try cluster.run(worker) == 0)
    #expect(worker.pushesApplied == 60)
  }
}

@Suite struct KeyedServerRefusalTests {
  let model = try! SparseModelSpec(kind: .logisticRegression, hashBits: 8)

  func joinedServer(shards: Int = 1, index: Int = 0) -> (ParameterServer, PeerID) {
    let keyed = KeyedModel(
      model: model, optimizer: SparseOptimizerSettings(kind: .sgd, learningRate: 0.5), seed: 1)
    var configuration = ServerConfiguration(
      mode: .async, requiredWorkers: 1, optimizer: try! OptimizerSettings(learningRate: 0.1),
      model: keyed.descriptor, initialParameters: [0],
      shard: try! Shard(index: index, count: shards))
    configuration.keyed = keyed
    let server = ParameterServer(configuration: configuration)
    let peer = PeerID([1])
    _ = server.receive(
      .join(
        Join(
          workerID: 3, shard: .whole, model: keyed.descriptor,
          dataset: DatasetIdentity(rows: 10, fingerprint: 1))), from: peer, now: 0)
    return (server, peer)
  }

  func code(_ outgoing: [Outgoing]) -> ErrorCode? {
    guard outgoing.count == 1, case .error(let reply) = outgoing[0].message else { return nil }
    return reply.code
  }

  func push(_ sequence: UInt64, _ keys: KeyList, _ gradients: [Double], rows: [Int] = [0])
    -> WireMessage
  {
    .sparsePush(
      SparsePush(
        workerID: 3, sequence: sequence, computedAtVersion: 0, rows: rows, keys: keys,
        gradients: gradients))
  }

  @Test func refusedPushesChangeNothing() {
    let (server, peer) = joinedServer()
    let refused: [(WireMessage, ErrorCode)] = [
      (push(1, .keys([5, 300], cacheAs: 0), [1, 1]), .keyOutOfRange),
      (push(1, .cached(id: 4, count: 2), [1, 1]), .unknownKeyList),
      (push(1, .keys([5, 6], cacheAs: 0), [1, 1, 1]), .layoutMismatch),
      (push(1, .keys([5, 6], cacheAs: 0), [1, 1], rows: [10]), .datasetMismatch),
      (
        .sparsePush(
          SparsePush(
            workerID: 3, sequence: 1, computedAtVersion: 9, rows: [0], keys: .keys([5], cacheAs: 0),
            gradients: [1])), .versionMismatch
      ),
    ]
    for (message, expected) in refused {
      #expect(code(server.receive(message, from: peer, now: 0)) == expected)
    }
    #expect(server.version == 0)
    #expect(server.keyed!.table.count == 0)
    #expect(server.rejected == UInt64(refused.count))
  }

  @Test func aRetriedPushIsAcknowledgedNotReapplied() {
    let (server, peer) = joinedServer()
    let first = server.receive(push(1, .keys([5, 6], cacheAs: 0), [1, -1]), from: peer, now: 0)
    #expect(first.first?.message == .sparseAck(SparseAck(version: 1, sequence: 1)))
    let again = server.receive(push(1, .keys([5, 6], cacheAs: 0), [1, -1]), from: peer, now: 0)
    #expect(again.first?.message == .sparseAck(SparseAck(version: 1, sequence: 1)))
    var values: [Double] = []
    server.keyed!.table.read([5, 6], into: &values)
    #expect(values == [-0.5, 0.5])
  }

  @Test func aKeyOfAnotherShardIsRefusedByName() {
    let (server, peer) = joinedServer(shards: 2, index: 0)
    let foreign = (UInt64(0)...256).first { KeyOwnership(shards: 2).owner(of: $0) == 1 }!
    let reply = server.receive(
      .sparsePull(SparsePull(workerID: 3, sequence: 1, keys: .keys([foreign], cacheAs: 7))),
      from: peer, now: 0)
    guard case .error(let error) = reply.first?.message else {
      Issue.record("expected a refusal, got \(reply)")
      return
    }
    #expect(error.code == .shardMismatch)
    #expect(error.message.contains("keys[0]"))
    // The refused pull cached nothing.
    #expect(
      code(server.receive(push(1, .cached(id: 7, count: 1), [1]), from: peer, now: 0))
        == .unknownKeyList)
  }
}
