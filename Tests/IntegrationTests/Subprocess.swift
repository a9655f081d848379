import Foundation

/// A child process for tests, started with `posix_spawn` and reaped with `waitpid`
/// by this object alone.
///
/// Foundation's `Process` on Linux learns that a child exited when a socket it
/// hands the child reaches end of file; a daemon the child starts (munged,
/// slurmd) inherits that socket and keeps it open, so `isRunning` stays true and
/// `waitUntilExit()` never returns. Here the child gets stdin from /dev/null,
/// stdout and stderr appended to files, and no other descriptor of ours.
final class Subprocess {
  /// The process id.
  let pid: pid_t
  /// The raw `waitpid` status, once reaped.
  private var waitStatus: Int32?

  /// Starts `executable` (an absolute path) with `arguments`, in `environment`
  /// (this process's when nil), writing stdout and stderr to the given files
  /// (the same path for both gives combined output).
  init(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
    standardOutput: String = "/dev/null", standardError: String = "/dev/null"
  ) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(
      &actions, 1, standardOutput, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    posix_spawn_file_actions_addopen(
      &actions, 2, standardError, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    // glibc ignores closing a descriptor that is no longer open.
    for descriptor in Self.openDescriptors() where descriptor > 2 {
      posix_spawn_file_actions_addclose(&actions, descriptor)
    }
    // Default signal handling and an empty mask, whatever the test runner set.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var everySignal = sigset_t()
    sigfillset(&everySignal)
    posix_spawnattr_setsigdefault(&attributes, &everySignal)
    var noSignal = sigset_t()
    sigemptyset(&noSignal)
    posix_spawnattr_setsigmask(&attributes, &noSignal)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let variables = (environment ?? ProcessInfo.processInfo.environment).map {
      strdup("\($0.key)=\($0.value)")
    }
    let envp = variables + [nil]
    defer { variables.forEach { free($0) } }
    var pid = pid_t()
    let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard result == 0 else {
      throw HarnessError("cannot start \(executable): \(String(cString: strerror(result)))")
    }
    self.pid = pid
  }

  /// The descriptors open in this process now.
  private static func openDescriptors() -> [Int32] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return names.compactMap { Int32($0) }
  }

  /// Reaps the child if it has exited.
  private func reap() {
    guard waitStatus == nil else { return }
    var status: Int32 = 0
    var result: pid_t
    repeat { result = waitpid(pid, &status, WNOHANG) } while result == -1 && errno == EINTR
    if result == pid { waitStatus = status }
  }

  /// Whether the child still runs.
  var isRunning: Bool {
    reap()
    return waitStatus == nil
  }

  /// The signal that ended the child, if one did.
  var terminatingSignal: Int32? {
    reap()
    guard let status = waitStatus, status & 0x7f != 0 else { return nil }
    return status & 0x7f
  }

  /// The exit status once it has exited; a death by signal reads as 128 + signal, as in a shell.
  var exitStatus: Int32? {
    reap()
    guard let status = waitStatus else { return nil }
    if let signal = terminatingSignal { return 128 + signal }
    return (status >> 8) & 0xff
  }

  /// Sends `signal` if the child still runs.
  func send(_ signal: Int32) {
    if isRunning { kill(pid, signal) }
  }

  /// Waits up to `seconds` for exit; returns the exit status, or nil if it still runs.
  func wait(within seconds: Double) -> Int32? {
    let deadline = Date().addingTimeInterval(seconds)
    while isRunning && Date() < deadline { usleep(10_000) }
    return exitStatus
  }

  /// Kills the child if it still runs and reaps it.
  func killAndReap() {
    guard isRunning else { return }
    send(SIGKILL)
    // SIGKILL cannot be caught; the bound only guards against a process stuck in the kernel.
    _ = wait(within: 30)
  }

  deinit { killAndReap() }
}
