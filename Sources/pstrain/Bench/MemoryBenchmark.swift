import Foundation
import Roles
import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// Resident memory of a real `pstrain server` process holding 10M Float64
/// parameters, and 10M Float32 ones.
enum MemoryBenchmark {
  /// VmRSS and VmHWM of process `pid`, in bytes.
  static func residentMemory(of pid: Int32) -> (current: Double, peak: Double) {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else {
      return (0, 0)
    }
    func field(_ name: String) -> Double {
      guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else {
        return 0
      }
      let kilobytes = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first
      return (kilobytes.flatMap { Double($0) } ?? 0) * 1024
    }
    return (field("VmRSS"), field("VmHWM"))
  }

  /// Starts `pstrain server --layers L --dtype D`, waits until it listens, and returns it.
  static func startServer(layers: Int, dtype: String = "float64") throws -> (ChildProcess, String) {
    let child = try ChildProcess(
      name: "server", executable: currentExecutablePath(),
      arguments: [
        "server", "--bind", "tcp://127.0.0.1:*", "--layers", "\(layers)", "--dtype", dtype,
      ])
    guard
      let line = child.waitForLine(
        timeoutMilliseconds: 60_000, matching: { $0.hasPrefix("listening ") })
    else { throw Failure(message: "bench server did not start: \(child.errorTail())") }
    return (child, String(line.dropFirst("listening ".count)))
  }

  static func memory(quick: Bool) throws -> [BenchFigure] {
    let layers = quick ? 1_000_000 : 10_000_000
    let rawBytes = Double(layers * 8)
    let (small, _) = try startServer(layers: 1)
    Sleep.milliseconds(200)
    let fixed = residentMemory(of: small.pid).current
    small.stop()
    let (big, endpoint) = try startServer(layers: layers)
    defer { big.stop() }
    Sleep.milliseconds(200)
    let idle = residentMemory(of: big.pid).current
    // One push and reply of the full tensor: the peak shows the transient message buffers.
    let context = try Context()
    let connection = try ServerConnection(
      context: context, endpoint: endpoint, parameterCount: layers)
    let (model, data) = NetworkBenchmarks.seedIdentity(layers: layers)
    _ = try connection.request(
      .join(Join(workerID: 0, shard: try Shard(index: 0, count: 1), model: model, dataset: data)),
      timeoutMilliseconds: 60_000, what: "join")
    _ = try connection.request(
      NetworkBenchmarks.push(layers: layers, worker: 0, sequence: 1, version: 0),
      timeoutMilliseconds: 60_000, what: "push")
    Sleep.milliseconds(200)
    let after = residentMemory(of: big.pid)
    let parameterMemory = after.current - fixed
    big.stop()
    let (float32, _) = try startServer(layers: layers, dtype: "float32")
    defer { float32.stop() }
    Sleep.milliseconds(200)
    let float32Idle = residentMemory(of: float32.pid).current
    return [
      BenchFigure(
        suite: "memory",
        name: "server resident memory for \(layers / 1_000_000)M Float64 parameters, idle",
        value: (idle - fixed) / 1e6, unit: "MB above the fixed overhead", baseline: rawBytes / 1e6,
        baselineName: "raw parameter bytes", higherIsBetter: false,
        note: String(format: "fixed overhead %.1f MB (a 1-parameter server)", fixed / 1e6)),
      BenchFigure(
        suite: "memory", name: "after a full push and reply", value: parameterMemory / 1e6,
        unit: "MB above the fixed overhead", baseline: rawBytes / 1e6,
        baselineName: "raw parameter bytes",
        higherIsBetter: false,
        note: String(
          format: "peak (VmHWM) %.1f MB while the gradient and reply buffers were alive",
          after.peak / 1e6)),
      BenchFigure(
        suite: "memory",
        name: "server resident memory for \(layers / 1_000_000)M Float32 parameters, idle",
        value: (float32Idle - fixed) / 1e6, unit: "MB above the fixed overhead",
        baseline: rawBytes / 2 / 1e6, baselineName: "raw parameter bytes", higherIsBetter: false,
        note: "a Float32 tensor is stored as Float32"),
    ]
  }
}
