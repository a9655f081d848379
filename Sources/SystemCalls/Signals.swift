/// A POSIX signal by its number, with names for the ones pstrain handles.
public struct Signal: Sendable, Equatable, CustomStringConvertible {
  /// The signal number, e.g. 15 for SIGTERM.
  public let number: Int32

  /// A signal by number.
  public init(number: Int32) { self.number = number }

  /// SIGINT: Ctrl-C at a terminal.
  public static let interrupt = Signal(number: Syscall.interruptSignal)
  /// SIGTERM: a polite request to stop.
  public static let terminate = Signal(number: Syscall.terminateSignal)
  /// SIGKILL: cannot be caught.
  public static let kill = Signal(number: Syscall.killSignal)
  /// SIGPIPE: a write to a closed pipe or socket.
  public static let brokenPipe = Signal(number: Syscall.pipeSignal)
  /// SIGXFSZ: a write beyond the file-size limit (ulimit -f).
  public static let fileSizeLimitExceeded = Signal(number: Syscall.fileSizeLimitSignal)

  public var description: String {
    switch self {
    case .interrupt: "SIGINT"
    case .terminate: "SIGTERM"
    case .kill: "SIGKILL"
    case .brokenPipe: "SIGPIPE"
    case .fileSizeLimitExceeded: "SIGXFSZ"
    default: "signal \(number)"
    }
  }
}

/// Process-wide signal dispositions.
public enum Signals {
  /// A signal handler: a C function of the signal number. It may only do what is
  /// async-signal-safe, such as storing to an atomic.
  public typealias Handler = @convention(c) (Int32) -> Void

  /// Ignores `signal`, so it neither kills the process nor interrupts calls (a
  /// write then fails with an errno instead: EPIPE, EFBIG).
  public static func ignore(_ signal: Signal) { Syscall.ignore(signal: signal.number) }

  /// Runs `handler` when one of `signals` arrives, after unblocking them: a
  /// parent may have started this process with them blocked (the mask survives
  /// exec). A blocking call the signal interrupts (poll, sleep) returns early.
  public static func handle(_ signals: [Signal], with handler: Handler) {
    Syscall.unblock(signals: signals.map(\.number))
    for signal in signals { Syscall.handle(signal: signal.number, with: handler) }
  }
}
