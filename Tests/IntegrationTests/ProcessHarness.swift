import Foundation
import Testing

/// The `pstrain` binary built next to this test bundle (or `PSTRAIN_BINARY`).
func pstrainBinary() throws -> String {
  if let path = ProcessInfo.processInfo.environment["PSTRAIN_BINARY"] { return path }
  var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  for _ in 0..<4 {
    let candidate = directory.appendingPathComponent("pstrain").path
    if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    directory = directory.deletingLastPathComponent()
  }
  let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  let fallback = root.appendingPathComponent(".build/debug/pstrain").path
  guard FileManager.default.isExecutableFile(atPath: fallback) else {
    throw HarnessError("pstrain binary not found; build it first or set PSTRAIN_BINARY")
  }
  return fallback
}

struct HarnessError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// A `pstrain` process whose output goes to files (no pipe can fill up), with
/// bounded waits. Every process is killed when its `Launched` is stopped.
final class Launched {
  let process: Subprocess
  let arguments: [String]
  let outputURL: URL
  let errorURL: URL

  /// Starts `pstrain ARGUMENTS`, or with `inNamespace` inside that network
  /// namespace (`ip netns exec`, which execs, so the pid is pstrain's).
  init(
    _ arguments: [String], inNamespace namespace: String? = nil, environment: [String: String] = [:]
  ) throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    outputURL = directory.appendingPathComponent("stdout")
    errorURL = directory.appendingPathComponent("stderr")
    self.arguments = arguments
    let binary = try pstrainBinary()
    process = try Subprocess(
      namespace == nil ? binary : "/usr/sbin/ip",
      namespace.map { ["netns", "exec", $0, binary] + arguments } ?? arguments,
      environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
      standardOutput: outputURL.path, standardError: errorURL.path)
  }

  var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }
  var errors: String { (try? String(contentsOf: errorURL, encoding: .utf8)) ?? "" }
  var lines: [String] { output.split(separator: "\n").map(String.init) }

  /// Waits up to `seconds` for a stdout line with `prefix`.
  func line(startingWith prefix: String, within seconds: Double = 30) throws -> String {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if let line = lines.first(where: { $0.hasPrefix(prefix) }) { return line }
      if !process.isRunning, !lines.contains(where: { $0.hasPrefix(prefix) }) { break }
      usleep(10_000)
    }
    throw HarnessError(
      "no line starting with \"\(prefix)\"; stdout: \(output.suffix(500)) stderr: \(errors.suffix(500))"
    )
  }

  /// Waits up to `seconds` for exit and returns the status (128 + signal after a
  /// signal); kills the process on timeout.
  @discardableResult
  func wait(within seconds: Double = 120) throws -> Int32 {
    guard let status = process.wait(within: seconds) else {
      stop()
      throw HarnessError(
        "process \(arguments) did not exit within \(seconds) s; stderr: \(errors.suffix(500))"
      )
    }
    return status
  }

  /// Sends `signal` (SIGTERM by default) and waits up to 15 s for exit.
  @discardableResult
  func terminate(_ signal: Int32 = SIGTERM) throws -> Int32 {
    process.send(signal)
    return try wait(within: 15)
  }

  /// Kills the process if it is still running.
  func stop() { process.killAndReap() }
}

/// Runs `pstrain ARGUMENTS` to completion (bounded) and returns status and output.
func runPstrain(
  _ arguments: [String], inNamespace namespace: String? = nil, within seconds: Double = 180
)
  throws -> (status: Int32, output: String, errors: String)
{
  let launched = try Launched(arguments, inNamespace: namespace)
  let status = try launched.wait(within: seconds)
  return (status, launched.output, launched.errors)
}

/// Starts a server on a free loopback port and returns it with its endpoint.
func startServer(_ extra: [String] = []) throws -> (Launched, String) {
  let server = try Launched(["server", "--bind", "tcp://127.0.0.1:*"] + extra)
  let line = try server.line(startingWith: "listening ")
  return (server, String(line.dropFirst("listening ".count)))
}

/// The last line of `output`, parsed as a JSON object.
func lastJSONObject(_ output: String) throws -> [String: Any] {
  guard let line = output.split(separator: "\n").last,
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
  else { throw HarnessError("no JSON object at the end of: \(output.suffix(300))") }
  return object
}

/// The array of numbers under `"key"` in the last line of `output`, each read
/// with `Double(_:)`, which is exact: Foundation's JSON parser on Linux can be
/// one unit in the last place off, too coarse to compare weights bit for bit.
func exactNumbers(_ key: String, in output: String) throws -> [Double] {
  guard let line = output.split(separator: "\n").last,
    let start = line.range(of: "\"\(key)\":[")?.upperBound,
    let end = line[start...].firstIndex(of: "]")
  else { throw HarnessError("no \"\(key)\" array at the end of: \(output.suffix(300))") }
  return try line[start..<end].split(separator: ",").map { text in
    guard let value = Double(text) else { throw HarnessError("not a number: \(text)") }
    return value
  }
}

/// Writes `pstrain data generate` output to a temporary CSV file and returns its path.
func generateData(rows: Int, seed: Int, noise: Double) throws -> String {
  let path = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-data-\(UUID().uuidString).csv"
  ).path
  let run = try runPstrain([
    "data", "generate", "--rows", "\(rows)", "--seed", "\(seed)", "--noise", "\(noise)", "--out",
    path,
  ])
  guard run.status == 0 else { throw HarnessError("data generate failed: \(run.errors)") }
  return path
}

/// `pstrain status --json` of the server at `endpoint`, parsed.
func serverStatus(_ endpoint: String) throws -> [String: Any] {
  let run = try runPstrain(["status", "--connect", endpoint, "--json"], within: 30)
  guard run.status == 0 else { throw HarnessError("status failed: \(run.errors)") }
  return try lastJSONObject(run.output)
}

/// Polls `condition` every 50 ms for up to `seconds`.
func waitFor(_ what: String, within seconds: Double, _ condition: () throws -> Bool) throws {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if try condition() { return }
    usleep(50_000)
  }
  throw HarnessError("timed out after \(seconds) s waiting for \(what)")
}

/// Runs any `executable` (not pstrain) with `arguments` and extra `environment`,
/// bounded by `seconds` (killed after); returns its status and combined output.
func runTool(
  _ executable: String, _ arguments: [String], environment: [String: String] = [:],
  seconds: Double = 120
) throws -> (status: Int32, output: String) {
  let log = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-tool-\(UUID().uuidString).log")
  let process = try Subprocess(
    executable, arguments,
    environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
    standardOutput: log.path, standardError: log.path)
  let status = process.wait(within: seconds)
  let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
  try? FileManager.default.removeItem(at: log)
  guard let status else {
    process.killAndReap()
    throw HarnessError(
      "\(executable) \(arguments.joined(separator: " ")) took over \(seconds) s: \(output.suffix(500))"
    )
  }
  return (status, output)
}

/// The repository's root folder (the one holding Package.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .deletingLastPathComponent().deletingLastPathComponent()

/// The project's Python environment's interpreter (`.venv/bin/python`, made by
/// `deploy/python-env.sh`; `deploy/local.sh test` makes it), or nil when it is missing:
/// the tests that need its packages are then skipped.
func projectPython() -> String? {
  let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
  return FileManager.default.isExecutableFile(atPath: python) ? python : nil
}
