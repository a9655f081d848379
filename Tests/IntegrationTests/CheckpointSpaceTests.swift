import Foundation
import Testing
import WireProtocol

/// A checkpoint directory that runs out of space while a server trains, and then
/// gets space back (issue 17): real processes, a real full file system (a small
/// tmpfs) or a real file-size limit (RLIMIT_FSIZE, set on the running server
/// with prlimit).
@Suite(
  .serialized,
  .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "needs curl"))
struct CheckpointSpaceTests {
  /// How the test takes space away and gives it back.
  enum Squeeze: CustomStringConvertible {
    /// A tmpfs mounted on the directory, filled up by a file and emptied by removing it.
    case fullDisk(mountPoint: String)
    /// RLIMIT_FSIZE on the server below a checkpoint's size, then lifted.
    case fileSizeLimit

    var description: String {
      switch self {
      case .fullDisk: "a full tmpfs"
      case .fileSizeLimit: "a file-size limit"
      }
    }

    /// What a failed write says.
    var reason: String {
      switch self {
      case .fullDisk: "No space left on device"
      case .fileSizeLimit: "File too large"
      }
    }

    /// Takes the space away from `server`'s checkpoint directory.
    func squeeze(_ server: Launched) throws {
      switch self {
      case .fullDisk(let mountPoint):
        let fd = open(mountPoint + "/filler", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw HarnessError("cannot create the filler file") }
        defer { close(fd) }
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        guard errno == ENOSPC else {
          throw HarnessError("filling the tmpfs stopped with errno \(errno)")
        }
      case .fileSizeLimit:
        // Only the soft limit: lifting it again needs no privilege.
        try setFileSizeLimit(of: server, to: "2048:")
      }
    }

    /// Gives the space back.
    func release(_ server: Launched) throws {
      switch self {
      case .fullDisk(let mountPoint):
        guard unlink(mountPoint + "/filler") == 0 else {
          throw HarnessError("cannot remove the filler file")
        }
      case .fileSizeLimit:
        try setFileSizeLimit(of: server, to: "unlimited:")
      }
    }

    private func setFileSizeLimit(of server: Launched, to limit: String) throws {
      let run = try runTool(
        "/usr/bin/prlimit", ["--pid", "\(server.process.pid)", "--fsize=\(limit)"], seconds: 30)
      guard run.status == 0 else { throw HarnessError("prlimit failed: \(run.output)") }
    }
  }

  static let canMountTmpfs: Bool = {
    guard getuid() == 0 else { return false }
    let probe = temporaryDirectory("pstrain-tmpfs-probe")
    defer { try? FileManager.default.removeItem(atPath: probe) }
    guard
      (try? runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]))?.status == 0
    else { return false }
    _ = try? runTool("/bin/umount", [probe])
    return true
  }()

  static func temporaryDirectory(_ prefix: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "\(prefix)-\(UUID().uuidString)"
    ).path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// A checkpoint directory for `kind`, and how to squeeze it; the tmpfs is
  /// unmounted by `cleanUp`.
  func directory(for kind: String) throws -> (path: String, squeeze: Squeeze) {
    let path = Self.temporaryDirectory("pstrain-checkpoint-space")
    guard kind == "tmpfs" else { return (path, .fileSizeLimit) }
    let mount = try runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", path])
    guard mount.status == 0 else { throw HarnessError("mount failed: \(mount.output)") }
    return (path, .fullDisk(mountPoint: path))
  }

  func cleanUp(_ path: String, _ squeeze: Squeeze) {
    if case .fullDisk = squeeze { _ = try? runTool("/bin/umount", ["-l", path]) }
    try? FileManager.default.removeItem(atPath: path)
  }

  /// `curl URL`, bounded.
  func scrape(_ url: String) throws -> String {
    try runTool("/usr/bin/curl", ["-s", "--max-time", "5", url], seconds: 30).output
  }

  /// The value of the sample line of `name`, nil when it is not exported.
  func value(_ text: String, _ name: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
      .flatMap { Double($0.split(separator: " ").last!) }
  }

  /// The status's checkpoint report.
  func report(_ endpoint: String) throws -> (version: UInt64, checkpoints: [String: Any]) {
    let status = try serverStatus(endpoint)
    let checkpoints = try #require(status["checkpoints"] as? [String: Any])
    return (try #require(integer(status, "version")), checkpoints)
  }

  /// A non-negative integer of a parsed JSON object.
  func integer(_ object: [String: Any], _ key: String) -> UInt64? {
    (object[key] as? Int).flatMap { $0 >= 0 ? UInt64($0) : nil }
  }

  /// Lines of the server's log that say something about failing checkpoints.
  func lines(_ server: Launched, containing text: String) -> [String] {
    server.lines.filter { $0.contains(text) }
  }

  /// Starts a server checkpointing into `directory` every 20 versions and a
  /// worker that trains on it until stopped; logs at notice level and above,
  /// so the log holds only what is worth saying (and stays below the limit).
  func startTraining(_ directory: String, _ extra: [String] = []) throws -> (
    server: Launched, endpoint: String, metrics: String, worker: Launched
  ) {
    let data = try generateData(rows: 40, seed: 3, noise: 0.2)
    let (server, endpoint) = try startServer(
      [
        "--checkpoint-dir", directory, "--checkpoint-every", "20", "--layers", "500", "--lr",
        "0.001", "--metrics", "127.0.0.1:0", "--log-level", "notice",
      ] + extra)
    let metrics = String(try server.line(startingWith: "metrics ").dropFirst("metrics ".count))
    let worker = try Launched([
      "worker", "--connect", endpoint, "--shard", "0/1", "--data", data, "--epochs", "100000000",
    ])
    return (server, endpoint, metrics, worker)
  }

  /// The version of the newest checkpoint file in `directory`, read and
  /// verified (checksum and all) by the checkpoint codec. A running server
  /// prunes old files, so one may vanish between listing and reading: then the
  /// newer one is read.
  func newestCheckpointVersion(_ directory: String) throws -> UInt64 {
    for _ in 0..<100 {
      let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter { $0.hasPrefix("checkpoint-") }.sorted()
      let newest = URL(fileURLWithPath: directory + "/" + (try #require(names.last)))
      guard let bytes = try? Data(contentsOf: newest) else { continue }
      return try CheckpointCodec.decode(Array(bytes)).version
    }
    throw HarnessError("the newest checkpoint in \(directory) kept vanishing")
  }

  @Test(
    .enabled(if: canMountTmpfs, "mounting a tmpfs needs root and a mount that works here"))
  func aFullDiskIsSaidOnceShownAndSurvived() throws {
    try fillAndEmpty(kind: "tmpfs")
  }

  @Test(
    .enabled(
      if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "needs prlimit"))
  func aFileSizeLimitIsSaidOnceShownAndSurvived() throws {
    try fillAndEmpty(kind: "fsize")
  }

  func fillAndEmpty(kind: String) throws {
    let (directory, squeeze) = try directory(for: kind)
    defer { cleanUp(directory, squeeze) }
    let (server, endpoint, metricsURL, worker) = try startTraining(directory)
    defer {
      worker.stop()
      server.stop()
    }

    // Working: a durable checkpoint, no failures.
    var healthy: [String: Any] = [:]
    try waitFor("a checkpoint at version 100 or later", within: 60) {
      healthy = try report(endpoint).checkpoints
      return (integer(healthy, "newest_durable_version") ?? 0) >= 100
    }
    #expect(integer(healthy, "failures_total") == 0)
    #expect(healthy["last_error"] is NSNull)
    let before = try scrape(metricsURL)
    #expect(value(before, "pstrain_checkpoint_failures_total") == 0)
    #expect((value(before, "pstrain_checkpoint_last_success_version") ?? 0) >= 100)
    let healthyStamp = try #require(
      value(before, "pstrain_checkpoint_last_success_timestamp_seconds"))
    #expect(abs(healthyStamp - Date().timeIntervalSince1970) < 600)

    // No space: training goes on, the newest durable checkpoint stays, the
    // failure is said once and shown in status and metrics.
    let squeezedAt = Date()
    try squeeze.squeeze(server)
    var failing: (version: UInt64, checkpoints: [String: Any]) = (0, [:])
    try waitFor("three failed checkpoints", within: 60) {
      failing = try report(endpoint)
      return (integer(failing.checkpoints, "consecutive_failures") ?? 0) >= 3
    }
    let durable = try #require(integer(failing.checkpoints, "newest_durable_version"))
    #expect((failing.checkpoints["last_error"] as? String)?.contains(squeeze.reason) == true)
    #expect(try newestCheckpointVersion(directory) == durable)
    let duringFailures = try scrape(metricsURL)
    let later = try report(endpoint)
    let tries = try #require(value(duringFailures, "pstrain_checkpoint_failures_total"))
    #expect(tries >= 3)
    #expect(value(duringFailures, "pstrain_checkpoint_last_success_version") == Double(durable))
    #expect(integer(later.checkpoints, "newest_durable_version") == durable)
    #expect(later.version > failing.version, "training goes on while checkpoints fail")
    // Tries back off: every 20 versions, then 40, 80, ... up to 1280, and at
    // least one a minute; before the fix, one per update.
    let span = Double(later.version - durable)
    let minutes = Date().timeIntervalSince(squeezedAt) / 60
    #expect(tries <= 8 + span / 1280 + minutes + 1, "\(tries) tries over \(span) versions")
    #expect(worker.process.isRunning)
    let text = try runPstrain(["status", "--connect", endpoint], within: 30).output
    #expect(text.contains("checkpoints: newest durable version \(durable), written "), "\(text)")
    #expect(text.contains("; FAILING for ") && text.contains(squeeze.reason), "\(text)")
    let failureLines = lines(server, containing: "failed, the previous one is kept")
    #expect(failureLines.count == 1, "\(server.output.suffix(2000))")
    #expect(failureLines.first?.contains(squeeze.reason) == true)
    #expect(
      failureLines.first?.contains("newest durable checkpoint is version \(durable)") == true)
    #expect(
      Double(lines(server, containing: "checkpoints failing for").count) <= minutes + 1)

    // Space again: the next try succeeds, says so once, and status and
    // metrics show the new checkpoint; the last error stays visible.
    try squeeze.release(server)
    var recovered: (version: UInt64, checkpoints: [String: Any]) = (0, [:])
    try waitFor("a checkpoint after space came back", within: 120) {
      recovered = try report(endpoint)
      return (integer(recovered.checkpoints, "newest_durable_version") ?? 0) > later.version
    }
    #expect(integer(recovered.checkpoints, "consecutive_failures") == 0)
    #expect((recovered.checkpoints["last_error"] as? String)?.contains(squeeze.reason) == true)
    let after = try scrape(metricsURL)
    #expect((value(after, "pstrain_checkpoint_last_success_version") ?? 0) > Double(later.version))
    #expect(
      (value(after, "pstrain_checkpoint_last_success_timestamp_seconds") ?? 0) > healthyStamp)
    #expect(
      value(after, "pstrain_checkpoint_failures_total")
        == Double(integer(recovered.checkpoints, "failures_total") ?? 0))
    #expect(lines(server, containing: "checkpoints work again").count == 1)
    let textAfter = try runPstrain(["status", "--connect", endpoint], within: 30).output
    #expect(textAfter.contains("failed before; last error "), "\(textAfter)")
    #expect(try newestCheckpointVersion(directory) > later.version)
    #expect(worker.process.isRunning)

    // A clean stop writes a last checkpoint, valid, at the final version.
    worker.stop()
    var stopped: UInt64 = 0
    try waitFor("the version to settle once the worker is gone", within: 30) {
      let previous = stopped
      usleep(300_000)
      stopped = try report(endpoint).version
      return stopped == previous
    }
    #expect(try server.terminate() == 0)
    #expect(try newestCheckpointVersion(directory) == stopped)
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy {
        !$0.hasPrefix(".tmp-")
      })
    #expect(lines(server, containing: "failed, the previous one is kept").count == 1)
  }

  /// With --checkpoint-required the first failure stops the server, with a
  /// clear message and exit 1, and its newest checkpoint is intact.
  @Test(
    .enabled(if: canMountTmpfs, "mounting a tmpfs needs root and a mount that works here"))
  func aRequiredCheckpointThatFailsStopsTheServer() throws {
    let (directory, squeeze) = try directory(for: "tmpfs")
    defer { cleanUp(directory, squeeze) }
    let (server, endpoint, _, worker) = try startTraining(directory, ["--checkpoint-required"])
    defer {
      worker.stop()
      server.stop()
    }
    try waitFor("a checkpoint at version 100 or later", within: 60) {
      (integer(try report(endpoint).checkpoints, "newest_durable_version") ?? 0) >= 100
    }
    try squeeze.squeeze(server)
    #expect(try server.wait(within: 60) == 1)
    let durable = try newestCheckpointVersion(directory)
    #expect(server.errors.contains("--checkpoint-required"), "\(server.errors)")
    #expect(server.errors.contains(squeeze.reason))
    #expect(server.errors.contains("newest durable checkpoint is version \(durable)"))
    #expect(server.errors.contains("restart with --resume"))
  }
}
