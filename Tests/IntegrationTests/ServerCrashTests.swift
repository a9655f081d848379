import Foundation
import Testing

/// The two runs of issue 15 with real processes: a server killed with -9 at
/// several moments of one run (early, in the middle, and after the last row)
/// and restarted with `--resume` each time; the run must end with exactly
/// epochs × rows gradients applied. `PSTRAIN_CRASH_ROWS` sets the rows (2,000 by
/// default; `deploy/reliability.sh` uses the 3,000).
@Suite(.serialized) struct ServerCrashTests {
  static let rows = Int(ProcessInfo.processInfo.environment["PSTRAIN_CRASH_ROWS"] ?? "") ?? 2000
  static let epochs = 3

  func checkpointDirectory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-crash-\(UUID().uuidString)"
    ).path
  }

  /// The gradients applied, or nil when the server does not answer.
  func applied(_ endpoint: String) -> Int? {
    (try? serverStatus(endpoint))?["gradients_applied"] as? Int
  }

  /// Kill points spread over the run: one early, one in the middle, and after
  /// the last row. The first two wait for a checkpoint at or past a random
  /// version of their stretch and add a random 0 to 40 ms, so the kill lands
  /// anywhere between two checkpoints.
  func killPoints(total: Int) -> [(checkpoint: Int, delayMilliseconds: UInt32)?] {
    [
      (Int.random(in: total / 10..<total / 4), UInt32.random(in: 0..<40)),
      (Int.random(in: total * 2 / 5..<total * 3 / 5), UInt32.random(in: 0..<40)), nil,
    ]
  }

  /// The newest "checkpoint at version N" a server has logged.
  func newestCheckpoint(of server: Launched) -> Int {
    server.lines.compactMap { line -> Int? in
      guard let range = line.range(of: "checkpoint at version ") else { return nil }
      return Int(line[range.upperBound...].prefix { $0.isNumber })
    }.max() ?? 0
  }

  /// Kills `server` with -9 at `point` (nil: once it has applied `total`
  /// gradients), or right away if it already exited, and starts it again with
  /// `--resume`.
  func crashAndResume(
    _ server: Launched, at point: (checkpoint: Int, delayMilliseconds: UInt32)?, total: Int,
    endpoint: String, settings: [String]
  ) throws -> Launched {
    if let point {
      // The server's own log, not a status request: a request per poll is too slow to aim.
      try waitFor("a checkpoint at version \(point.checkpoint) or later", within: 120) {
        !server.process.isRunning || newestCheckpoint(of: server) >= point.checkpoint
      }
      usleep(point.delayMilliseconds * 1000)
    } else {
      try waitFor("\(total) gradients applied", within: 120) {
        !server.process.isRunning || (applied(endpoint) ?? 0) >= total
      }
    }
    server.process.send(SIGKILL)
    _ = try server.wait(within: 10)
    let resumed = try Launched(["server", "--bind", endpoint, "--resume"] + settings)
    _ = try resumed.line(startingWith: "listening ")
    return resumed
  }

  @Test(arguments: [[], ["--pipeline", "8", "--pushes-per-frame", "4"]])
  func fixedShardWorkersRedoWhatARestartedServerLacks(pipelining: [String]) throws {
    let total = Self.epochs * Self.rows
    let data = try generateData(rows: Self.rows, seed: 15, noise: 0.2)
    let settings = [
      "--checkpoint-dir", checkpointDirectory(), "--checkpoint-every", "200",
    ]
    var (server, endpoint) = try startServer(settings)
    var servers = [server]
    defer { for server in servers { server.stop() } }
    let worker = try Launched(
      [
        "worker", "--connect", endpoint, "--shard", "0/1", "--data", data, "--epochs",
        "\(Self.epochs)", "--heartbeat-ms", "200",
      ] + pipelining)
    defer { worker.stop() }
    for point in killPoints(total: total) {
      server = try crashAndResume(
        server, at: point, total: total, endpoint: endpoint, settings: settings)
      servers.append(server)
    }
    #expect(try worker.wait(within: 120) == 0, "\(worker.errors.suffix(800))")
    let log = worker.output + worker.errors
    #expect(log.contains("done, \(total) pushes applied"), "\(log.suffix(800))")
    let final = try serverStatus(endpoint)
    #expect(final["gradients_applied"] as? Int == total)
    #expect(final["version"] as? Int == total)
    // The last server says what it restored.
    let resume = final["resume"] as? [String: Any]
    #expect((resume?["checkpoint"] as? String)?.hasPrefix("checkpoint-") == true, "\(final)")
    #expect((resume?["version"] as? Int ?? .max) <= total)
    #expect(try server.terminate() == 0)
  }

  @Test func aLeasedJobEndsCompleteThroughCrashesUpToItsLastRow() throws {
    let total = Self.epochs * Self.rows
    let data = try generateData(rows: Self.rows, seed: 16, noise: 0.2)
    let settings = [
      "--epochs", "\(Self.epochs)", "--chunk-rows", "32", "--checkpoint-dir",
      checkpointDirectory(), "--checkpoint-every", "200", "--dead-after-ms", "3000",
    ]
    var (server, endpoint) = try startServer(settings)
    var servers = [server]
    defer { for server in servers { server.stop() } }
    let workers = try (0..<2).map { id in
      try Launched([
        "worker", "--connect", endpoint, "--data", data, "--id", "\(id)", "--heartbeat-ms", "200",
      ])
    }
    defer { for worker in workers { worker.stop() } }
    for point in killPoints(total: total) {
      server = try crashAndResume(
        server, at: point, total: total, endpoint: endpoint, settings: settings)
      servers.append(server)
    }
    for worker in workers {
      #expect(try worker.wait(within: 120) == 0, "\(worker.errors.suffix(800))")
    }
    // The last server finds the job complete (or completes it) and exits by itself.
    #expect(try server.wait(within: 60) == 0, "\(server.errors.suffix(800))")
    let summary = try server.line(startingWith: "finished: ")
    #expect(
      summary.hasPrefix(
        "finished: \(Self.epochs) epochs of \(Self.rows) rows, version \(total), \(total) gradients applied"
      ), "\(summary)")
    // Nothing was left for workers that had been told the job was done.
    #expect(!server.errors.contains("rows left to lease and no worker"), "\(server.errors)")
  }

  /// Whatever a worker was told is done is in a checkpoint before it hears so:
  /// with periodic checkpoints too rare to matter, a server killed -9 right
  /// after its workers finished resumes with every gradient (fixed shard) or
  /// with the job complete (leased).
  @Test(arguments: [false, true])
  func whatAWorkerWasToldIsDoneIsInACheckpoint(leased: Bool) throws {
    let rows = 50
    let epochs = 2
    let data = try generateData(rows: rows, seed: 17, noise: 0.2)
    let settings =
      ["--checkpoint-dir", checkpointDirectory(), "--checkpoint-every", "1000000"]
      + (leased ? ["--epochs", "\(epochs)", "--chunk-rows", "8", "--stay"] : [])
    let (server, endpoint) = try startServer(settings)
    defer { server.stop() }
    let worker = try Launched(
      ["worker", "--connect", endpoint, "--data", data]
        + (leased ? [] : ["--shard", "0/1", "--epochs", "\(epochs)"]))
    defer { worker.stop() }
    #expect(try worker.wait(within: 60) == 0, "\(worker.errors.suffix(500))")
    server.process.send(SIGKILL)
    _ = try server.wait(within: 10)
    let resumed = try Launched(["server", "--bind", endpoint, "--resume"] + settings)
    defer { resumed.stop() }
    _ = try resumed.line(startingWith: "listening ")
    let status = try serverStatus(endpoint)
    #expect(status["gradients_applied"] as? Int == rows * epochs)
    let resume = status["resume"] as? [String: Any]
    #expect(resume?["gradients_applied"] as? Int == rows * epochs, "\(status)")
    if leased { #expect(resume?["job_complete"] as? Bool == true, "\(status)") }
    #expect(try resumed.terminate() == 0)
  }
}
