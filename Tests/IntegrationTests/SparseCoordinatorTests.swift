import Foundation
import Testing

/// Writes `rows` rows of libsvm data to a temporary file: 8 of 200 features per
/// row, each with value 1, labelled by a fixed logistic teacher with a seeded
/// draw, so a sparse logistic regression learns it well above chance.
private func writeLibSVM(rows: Int, seed: UInt64) throws -> String {
  var state = seed
  func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  // The teacher's weights depend on the feature only (not the seed).
  func weight(_ feature: Int) -> Double {
    Double((UInt64(feature) &* 0x9E37_79B9_7F4A_7C15) >> 54) / 1024 * 3 - 1.5
  }
  var text = ""
  for _ in 0..<rows {
    var features = Set<Int>()
    while features.count < 8 { features.insert(Int(next() % 200)) }
    let sorted = features.sorted()
    let score = sorted.reduce(0.0) { $0 + weight($1) }
    let probability = 1 / (1 + exp(-score))
    let label = Double(next() >> 11) / Double(1 << 53) < probability ? 1 : 0
    text += "\(label) " + sorted.map { "\($0):1" }.joined(separator: " ") + "\n"
  }
  let path = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-sparse-\(UUID().uuidString).libsvm"
  ).path
  try text.write(toFile: path, atomically: true, encoding: .utf8)
  return path
}

/// The coordinator of a sparse model, end to end: two server shards, two sparse
/// workers, and a coordinator that evaluates held-out libsvm rows (test loss,
/// accuracy, ROC AUC) and audits sampled pushes joined across the shards.
@Suite(.serialized) struct SparseCoordinatorTests {
  /// A clean run: the final evaluation learnt the teacher (AUC well above 0.5)
  /// and every audit passed; with a worker scaling its gradients by 1.001, its
  /// audits fail and the coordinator exits 1.
  @Test(arguments: [false, true])
  func evaluatesAndAuditsAcrossServerShards(faulty: Bool) throws {
    let data = try writeLibSVM(rows: 1200, seed: 1)
    let test = try writeLibSVM(rows: 400, seed: 2)
    defer { for path in [data, test] { try? FileManager.default.removeItem(atPath: path) } }
    let model = ["--model", "sparse-logreg", "--hash-bits", "12", "--workers", "2"]
    let (first, firstEndpoint) = try startServer(model + ["--shard", "0/2"])
    defer { first.stop() }
    let (second, secondEndpoint) = try startServer(model + ["--shard", "1/2"])
    defer { second.stop() }
    let endpoints = firstEndpoint + "," + secondEndpoint
    let coordinator = try Launched([
      "coordinator", "--connect", endpoints, "--data", data, "--test-data", test,
      "--every", "10", "--eval-every", "20", "--json",
    ])
    defer { coordinator.stop() }
    _ = try coordinator.line(startingWith: "{\"type\":\"subscribed\"")
    let workers = try (0..<2).map { index in
      try Launched(
        [
          "worker", "--connect", endpoints, "--shard", "\(index)/2", "--data", data,
          "--epochs", "3", "--batch-size", "50", "--pipeline", "4",
        ] + (faulty && index == 1 ? ["--fault", "scale=1.001"] : []))
    }
    defer { for worker in workers { worker.stop() } }
    for worker in workers { #expect(try worker.wait(within: 120) == 0, "\(worker.errors)") }
    let status = try coordinator.terminate(SIGINT)
    #expect(status == (faulty ? 1 : 0), "\(coordinator.errors)")

    let objects = coordinator.lines.compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    let evaluations = objects.filter { $0["type"] as? String == "evaluation" }
    let final = try #require(evaluations.last)
    #expect(final["final"] as? Bool == true)
    #expect(final["rows"] as? Int == 400)
    // 2 workers × 3 epochs × 12 batches of the 600-row shards.
    #expect(final["version"] as? Int == 72)
    let auc = try #require(final["test_auc"] as? Double)
    #expect(auc > 0.7, "\(final)")
    #expect((final["test_loss"] as? Double).map { $0 < log(2.0) } == true, "\(final)")
    #expect((final["test_accuracy"] as? Double).map { $0 > 0.6 } == true, "\(final)")
    #expect(evaluations.count >= 2, "an evaluation every 20 versions, and the final one")

    let summary = try #require(objects.last)
    #expect(summary["type"] as? String == "summary")
    let audits = try #require(summary["audits"] as? [String: Any])
    let count = try #require(audits["count"] as? Int)
    let failed = try #require(audits["failed"] as? Int)
    let failedWorkers = audits["failed_workers"] as? [Int]
    if faulty {
      #expect(failed > 0, "\(audits)")
      #expect(failedWorkers == [1], "\(audits)")
    } else {
      #expect(count - failed > 0, "\(audits)")
      #expect(failed == 0, "\(audits)")
    }
    // Audits of both workers' pushes: each worker's first push is always audited.
    let audited = Set(
      objects.filter { $0["type"] as? String == "audit" }.compactMap { $0["worker"] as? Int })
    #expect(audited == [0, 1], "\(coordinator.output.suffix(2000))")
  }
}
