/// Time on a monotonic clock (CLOCK_MONOTONIC), for leases, timeouts and
/// benchmarks: it never jumps when the wall clock is set. Reading it allocates
/// nothing and is inlined into the caller, as hot loops read it per message.
public enum MonotonicClock {
  /// Milliseconds since an arbitrary fixed point.
  @inlinable
  public static func milliseconds() -> UInt64 { nanoseconds() / 1_000_000 }

  /// Nanoseconds since an arbitrary fixed point.
  @inlinable
  public static func nanoseconds() -> UInt64 { Syscall.monotonicNanoseconds() }
}
