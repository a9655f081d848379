import Synchronization
import SystemCalls

private let stopRequested = Atomic<Int32>(0)

/// SIGINT and SIGTERM as a flag the socket loops poll between waits: a signal
/// interrupts `zmq_poll`, the loop sees the flag and shuts down cleanly.
public enum ShutdownSignal {
  /// Installs the handlers for SIGINT and SIGTERM (and ignores SIGPIPE). A
  /// parent may have started us with these signals blocked (the mask survives
  /// exec), so they are unblocked too.
  public static func install() {
    Signals.ignore(.brokenPipe)
    Signals.handle([.interrupt, .terminate]) { number in
      stopRequested.store(number, ordering: .relaxed)
    }
  }

  /// Whether a stop signal arrived.
  public static var isRequested: Bool { stopRequested.load(ordering: .relaxed) != 0 }

  /// The signal that arrived, or 0.
  public static var signalNumber: Int32 { stopRequested.load(ordering: .relaxed) }
}
