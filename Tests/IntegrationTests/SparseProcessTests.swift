import Foundation
import Testing
import TrainingMath
import WireProtocol
import ZeroMQ

/// Writes a small click-like libsvm file (10 of 300 ids per row, labels from a
/// fixed teacher) and returns its path.
func writeSmallLibSVM(rows: Int, seed: UInt64) throws -> String {
  var generator = SplitMix64(seed: seed)
  var text = ""
  for _ in 0..<rows {
    var ids = Set<UInt64>()
    while ids.count < 10 { ids.insert(generator.next() % 300) }
    let score = ids.reduce(-0.3) { $0 + ($1 % 4 == 0 ? 0.7 : -0.15) }
    let label = generator.nextUnit() < 1 / (1 + exp(-score)) ? 1 : 0
    text += "\(label) " + ids.sorted().map { "\($0):1" }.joined(separator: " ") + "\n"
  }
  let path = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-clicks-\(UUID().uuidString).libsvm"
  ).path
  try text.write(toFile: path, atomically: true, encoding: .utf8)
  return path
}

/// Sparse models through real processes: server shards, workers, hostile frames.
@Suite(.serialized) struct SparseProcessTests {
  @Test func workersTrainASparseModelThroughTwoServerShards() throws {
    let data = try writeSmallLibSVM(rows: 600, seed: 3)
    let model = ["--model", "fm:2", "--hash-bits", "14", "--workers", "2"]
    let (first, firstEndpoint) = try startServer(model + ["--shard", "0/2"])
    defer { first.stop() }
    let (second, secondEndpoint) = try startServer(model + ["--shard", "1/2"])
    defer { second.stop() }
    let endpoints = firstEndpoint + "," + secondEndpoint
    let workers = try (0..<2).map { index in
      try Launched([
        "worker", "--connect", endpoints, "--shard", "\(index)/2", "--data", data, "--epochs", "2",
        "--batch-size", "30", "--pipeline", "3",
      ])
    }
    defer { workers.forEach { $0.stop() } }
    for worker in workers {
      #expect(try worker.wait(within: 120) == 0, "\(worker.errors.suffix(400))")
    }
    // 300 rows a worker, 10 batches an epoch, 2 epochs, 2 workers: 40 pushes,
    // each applied once on every shard (every batch touches keys of both).
    for endpoint in [firstEndpoint, secondEndpoint] {
      let status = try serverStatus(endpoint)
      #expect(status["version"] as? Int == 40)
      #expect(status["rejected"] as? Int == 0)
    }
  }

  @Test func hostileSparseMessagesAreRefusedByFieldAndChangeNothing() throws {
    let (server, endpoint) = try startServer(["--model", "sparse-logreg", "--hash-bits", "8"])
    defer { server.stop() }
    let context = try Context()
    let socket = try Socket(context, kind: .dealer)
    try socket.set(.linger(milliseconds: 100))
    try socket.connect(endpoint)
    func exchange(_ bytes: [UInt8]) throws -> WireMessage {
      try socket.send(Message(bytes: bytes))
      #expect(try socket.waitForInput(timeoutMilliseconds: 10_000))
      return try WireCodec.decode(try #require(try socket.receive()).bytes)
    }
    let row = ModelDescriptor(
      name: "sparse-logreg.h8", layout: [TensorSpec(name: "row", count: 1)])
    let joined = try exchange(
      WireCodec.encode(
        .join(
          Join(
            workerID: 1, shard: .whole, model: row,
            dataset: DatasetIdentity(rows: 4, fingerprint: 9)))))
    guard case .weights = joined else {
      Issue.record("join answered \(joined)")
      return
    }
    func push(_ keys: KeyList, _ gradients: [Double]) -> [UInt8] {
      WireCodec.encode(
        .sparsePush(
          SparsePush(
            workerID: 1, sequence: 1, computedAtVersion: 0, rows: [0], keys: keys,
            gradients: gradients)))
    }
    var unsorted = push(.keys([1, 2], cacheAs: 0), [1, 1])
    var duplicate = push(.keys([1, 2], cacheAs: 0), [1, 1])
    var nan = push(.keys([1, 2], cacheAs: 0), [1, 1])
    // The keys are the last 16 bytes before the values' count and values (4 + 16).
    let keysAt = unsorted.count - 20 - 16
    unsorted.replaceSubrange(
      keysAt..<(keysAt + 8), with: withUnsafeBytes(of: UInt64(5).littleEndian) { Array($0) })
    duplicate.replaceSubrange(
      (keysAt + 8)..<(keysAt + 16), with: withUnsafeBytes(of: UInt64(1).littleEndian) { Array($0) })
    nan.replaceSubrange(
      (nan.count - 8)..<nan.count,
      with: withUnsafeBytes(of: Double.nan.bitPattern.littleEndian) { Array($0) })
    let hostile: [([UInt8], String)] = [
      (unsorted, "keys[1]"),
      (duplicate, "keys[1]"),
      (nan, "gradients"),
      (push(.keys([1, 257], cacheAs: 0), [1, 1]), "keys[1]"),
      (push(.keys([1, 2], cacheAs: 0), [1, 1, 1]), "gradients"),
      (push(.cached(id: 3, count: 2), [1, 1]), "keys"),
    ]
    for (bytes, field) in hostile {
      let answer = try exchange(bytes)
      guard case .error(let refusal) = answer else {
        Issue.record("expected a refusal naming \(field), got \(answer.type)")
        continue
      }
      #expect(refusal.message.contains(field), "\(refusal.message)")
    }
    let status = try serverStatus(endpoint)
    #expect(status["version"] as? Int == 0)
    #expect(status["rejected"] as? Int == hostile.count)
    // A good push still goes through after all that.
    #expect(
      try exchange(push(.keys([1, 2], cacheAs: 0), [1, 1]))
        == .sparseAck(SparseAck(version: 1, sequence: 1)))
  }

  /// The rows of `keys` a server at `endpoint` serves, read by a client that
  /// has not joined (a read-only pull, as the coordinator's evaluation does).
  func servedRows(_ keys: [UInt64], at endpoint: String) throws -> SparseRows {
    let context = try Context()
    let socket = try Socket(context, kind: .dealer)
    try socket.set(.linger(milliseconds: 100))
    try socket.connect(endpoint)
    try socket.send(
      Message(
        bytes: WireCodec.encode(
          .sparsePull(SparsePull(workerID: 77, sequence: 1, keys: .keys(keys, cacheAs: 0))))))
    #expect(try socket.waitForInput(timeoutMilliseconds: 10_000))
    let frames = try #require(try socket.receiveMultipart()).frames.map(\.bytes)
    let reply = try WireCodec.decode(frames: frames)
    guard case .sparseRows(let rows) = reply else {
      throw HarnessError("expected rows, got \(reply)")
    }
    return rows
  }

  @Test func aKeyedTableIsCheckpointedAndResumedBitForBit() throws {
    let data = try writeSmallLibSVM(rows: 300, seed: 5)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-sparse-checkpoints-\(UUID().uuidString)"
    ).path
    let server =
      ["--model", "fm:3", "--hash-bits", "12", "--optimizer", "ftrl", "--l1", "0.01"]
      + ["--checkpoint-dir", directory, "--checkpoint-every", "1000"]
    let (first, endpoint) = try startServer(server)
    defer { first.stop() }
    let worker = try Launched([
      "worker", "--connect", endpoint, "--shard", "0/1", "--data", data, "--epochs", "2",
      "--batch-size", "25",
    ])
    defer { worker.stop() }
    #expect(try worker.wait(within: 120) == 0, "\(worker.errors.suffix(400))")
    let model = try SparseModelSpec(kind: .factorizationMachine(factors: 3), hashBits: 12)
    let keys = Array(0...model.largestKey)
    let before = try servedRows(keys, at: endpoint)
    let trained = try serverStatus(endpoint)
    #expect(trained["version"] as? Int == 24)
    // SIGTERM writes a checkpoint; the resumed server serves the same rows, bit for bit.
    #expect(try first.terminate() == 0)
    let (second, resumed) = try startServer(server + ["--resume"])
    defer { second.stop() }
    let after = try servedRows(keys, at: resumed)
    #expect(after.version == before.version)
    #expect(after.values.map(\.bitPattern) == before.values.map(\.bitPattern))
    let status = try serverStatus(resumed)
    let table = try #require(status["keyed_table"] as? [String: Any])
    let trainedTable = try #require(trained["keyed_table"] as? [String: Any])
    #expect(table["rows_touched"] as? Int == trainedTable["rows_touched"] as? Int)
    #expect((table["rows_touched"] as? Int ?? 0) > 100)
  }
}
