import Foundation
import Roles
import SystemCalls
import TrainingMath
import WireProtocol

/// What a checkpoint costs: encoding (with its CRC-32), the durable write
/// (temporary file, fsync, rename, directory fsync) and reading it back on
/// resume, at 1M and 10M Float64 parameters, against writing and fsyncing the
/// same bytes raw in the same directory.
enum CheckpointBenchmark {
  static func checkpoint(parameters count: Int) throws -> ServerCheckpoint {
    let model = ModelDescriptor(name: "chain", layout: [TensorSpec(name: "w", count: count)])
    return ServerCheckpoint(
      mode: .async,
      optimizer: Optimizer(
        settings: try OptimizerSettings(learningRate: 0.05), parameterCount: count),
      requiredWorkers: 1, model: model, version: 1000, gradientsApplied: 1000, rejected: 0,
      parameters: (0..<count).map { 1 + 1e-9 * Double($0 % 1000) },
      sequences: (0..<64).map { .init(workerID: UInt32($0), sequence: 1000) },
      dataset: DatasetIdentity(rows: 1000, fingerprint: 7), work: nil)
  }

  /// Seconds of the best of `runs` calls of `body`.
  static func best(_ runs: Int, _ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0..<runs {
      let start = MonotonicClock.nanoseconds()
      try body()
      best = min(best, seconds(from: start))
    }
    return best
  }

  static func checkpoints(quick: Bool) throws -> [BenchFigure] {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-bench-ckpt-\(UUID().uuidString)"
    ).path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let store = try CheckpointStore(directory: directory)
    var figures: [BenchFigure] = []
    for count in quick ? [1_000_000] : [1_000_000, 10_000_000] {
      let state = try checkpoint(parameters: count)
      let runs = quick ? 2 : 3
      var bytes: [UInt8] = []
      let encode = best(runs) { bytes = CheckpointCodec.encode(state) }
      var path = ""
      let write = try best(runs) { path = try store.write(state) }
      let read = try best(runs) { _ = try CheckpointStore.read(path) }
      let rawPath = directory + "/raw"
      let raw = try best(runs) { try FileIO.overwrite(bytes, at: rawPath) }
      let label = count >= 10_000_000 ? "10M" : "1M"
      let megabytes = Double(bytes.count) / 1e6
      figures.append(
        BenchFigure(
          suite: "checkpoint", name: "encode \(label) parameters", value: encode * 1000,
          unit: "ms", higherIsBetter: false,
          note: String(format: "%.0f MB with its CRC-32", megabytes)))
      figures.append(
        BenchFigure(
          suite: "checkpoint", name: "durable write \(label) parameters", value: write * 1000,
          unit: "ms", baseline: raw * 1000, baselineName: "raw write+fsync of the bytes",
          higherIsBetter: false, note: "encode, write, fsync, rename, directory fsync"))
      figures.append(
        BenchFigure(
          suite: "checkpoint", name: "read and verify \(label) parameters", value: read * 1000,
          unit: "ms", higherIsBetter: false, note: "what --resume does"))
    }
    return figures
  }
}
