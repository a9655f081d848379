import Foundation
import Synchronization
import SystemCalls

/// A child OS process whose stdout lines and stderr text are collected by
/// background threads, so its pipes never fill and block it.
final class ChildProcess: Sendable {
  /// A short name for messages, e.g. `worker 1`.
  let name: String
  private let process: Process
  private let lines = Mutex<[String]>([])
  private let errors = Mutex<String>("")
  private let readersDone = DispatchGroup()

  /// Starts `executable` with `arguments`, bound to die with this process (see
  /// `ParentDeath`). Call it from the main thread: the kernel's parent-death signal
  /// follows the thread that spawned the child.
  init(name: String, executable: String, arguments: [String]) throws {
    self.name = name
    process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ParentDeath.childEnvironment()
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = FileHandle.nullDevice
    try process.run()
    read(output.fileHandleForReading) { [self] text in
      lines.withLock { $0.append(contentsOf: text.split(separator: "\n").map(String.init)) }
    }
    read(error.fileHandleForReading) { [self] text in errors.withLock { $0 += text } }
  }

  private func read(_ handle: FileHandle, _ consume: @escaping @Sendable (String) -> Void) {
    readersDone.enter()
    Thread.detachNewThread { [readersDone] in
      var pending = Data()
      while true {
        let chunk = handle.availableData
        if chunk.isEmpty { break }
        pending.append(chunk)
        // Hand over complete lines only.
        if let newline = pending.lastIndex(of: UInt8(ascii: "\n")) {
          consume(String(decoding: pending[..<newline], as: UTF8.self))
          pending.removeSubrange(...newline)
        }
      }
      if !pending.isEmpty { consume(String(decoding: pending, as: UTF8.self)) }
      readersDone.leave()
    }
  }

  /// The process id.
  var pid: Int32 { process.processIdentifier }
  /// Whether it still runs.
  var isRunning: Bool { process.isRunning }
  /// Its stdout lines so far.
  var outputLines: [String] { lines.withLock { $0 } }
  /// Its stderr so far.
  var errorText: String { errors.withLock { $0 } }

  /// The exit status, once it has exited (a signal death reads as 128 + signal).
  var exitStatus: Int32? {
    guard !process.isRunning else { return nil }
    return process.terminationReason == .uncaughtSignal
      ? 128 + process.terminationStatus : process.terminationStatus
  }

  /// Waits up to `timeoutMilliseconds` for a stdout line satisfying `matches`.
  func waitForLine(timeoutMilliseconds: Int, matching matches: (String) -> Bool) -> String? {
    let deadline = Date().addingTimeInterval(Double(timeoutMilliseconds) / 1000)
    while Date() < deadline {
      if let line = outputLines.first(where: matches) { return line }
      if !process.isRunning {
        _ = readersDone.wait(timeout: .now() + 1)
        return outputLines.first(where: matches)
      }
      Sleep.milliseconds(10)
    }
    return nil
  }

  /// Waits up to `timeoutMilliseconds` for the process to exit; returns its status.
  @discardableResult
  func wait(timeoutMilliseconds: Int) -> Int32? {
    let deadline = Date().addingTimeInterval(Double(timeoutMilliseconds) / 1000)
    while process.isRunning && Date() < deadline { Sleep.milliseconds(10) }
    guard !process.isRunning else { return nil }
    _ = readersDone.wait(timeout: .now() + 2)
    return exitStatus
  }

  /// Sends SIGTERM, waits up to `graceMilliseconds`, then SIGKILLs. Returns the exit status.
  @discardableResult
  func stop(graceMilliseconds: Int = 10_000) -> Int32? {
    if process.isRunning { try? ProcessControl.send(.terminate, to: pid) }
    if let status = wait(timeoutMilliseconds: graceMilliseconds) { return status }
    try? ProcessControl.send(.kill, to: pid)
    return wait(timeoutMilliseconds: 5000)
  }

  /// The last `count` lines of stderr, for error messages.
  func errorTail(_ count: Int = 5) -> String {
    errorText.split(separator: "\n").suffix(count).joined(separator: "\n")
  }
}

/// The path of the running executable, so `train` can start copies of itself.
func currentExecutablePath() -> String {
  if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
    return path
  }
  return CommandLine.arguments[0]
}
