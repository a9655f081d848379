/// This process, its parent, its environment and other processes by id.
public enum ProcessControl {
  /// This process's id.
  public static var id: Int32 { Syscall.processID() }

  /// The host's name, as `hostname` prints it ("localhost" if it cannot be read).
  public static var hostName: String { Syscall.hostName() }

  /// The parent's id; it changes when the parent dies and the process is reparented.
  public static var parentID: Int32 { Syscall.parentProcessID() }

  /// Asks the kernel to send `signal` to this process when the thread that
  /// started it ends (Linux PR_SET_PDEATHSIG; it survives exec).
  public static func requestSignalOnParentDeath(_ signal: Signal) throws(SystemCallError) {
    try Syscall.setParentDeathSignal(signal.number)
  }

  /// Sends `signal` to the process `pid`.
  public static func send(_ signal: Signal, to pid: Int32) throws(SystemCallError) {
    try Syscall.kill(pid, signal: signal.number)
  }

  /// Ends the process at once with `status`, running no exit handlers and
  /// flushing no buffers: for a process whose parent is gone.
  public static func exitImmediately(_ status: Int32) -> Never { Syscall.exitImmediately(status) }

  /// Ends the process with `status` after flushing its output streams.
  public static func exit(_ status: Int32) -> Never { Syscall.exit(status) }

  /// The value of the environment variable `name`, removed from the environment
  /// so that no process started later inherits it.
  public static func takeEnvironmentVariable(_ name: String) -> String? {
    guard let value = Syscall.environmentVariable(name) else { return nil }
    Syscall.unsetEnvironmentVariable(name)
    return value
  }
}
