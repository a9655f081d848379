import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

private let stopRequested = Atomic<Int32>(0)

/// SIGINT and SIGTERM as a flag the socket loops poll between waits: a signal
/// interrupts `zmq_poll`, the loop sees the flag and shuts down cleanly.
public enum ShutdownSignal {
  /// Installs the handlers for SIGINT and SIGTERM (and ignores SIGPIPE). A
  /// parent may have started us with these signals blocked (the mask survives
  /// exec), so they are unblocked too.
  public static func install() {
    signal(SIGPIPE, SIG_IGN)
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    let handler: @convention(c) (Int32) -> Void = { number in
      stopRequested.store(number, ordering: .relaxed)
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
  }

  /// Whether a stop signal arrived.
  public static var isRequested: Bool { stopRequested.load(ordering: .relaxed) != 0 }

  /// The signal that arrived, or 0.
  public static var signalNumber: Int32 { stopRequested.load(ordering: .relaxed) }
}

/// Milliseconds on a monotonic clock, for leases and timeouts.
public enum MonotonicClock {
  /// Milliseconds since an arbitrary fixed point.
  public static func milliseconds() -> UInt64 { nanoseconds() / 1_000_000 }

  /// Nanoseconds since an arbitrary fixed point.
  public static func nanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
  }
}
