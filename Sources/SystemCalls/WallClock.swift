/// Time on the wall clock (CLOCK_REALTIME), for timestamps a person or another
/// program reads (event files' `wall_time`, their names); intervals and
/// timeouts use `MonotonicClock`, which never jumps.
public enum WallClock {
  /// Seconds since 1970, with the fraction.
  public static func seconds() -> Double { Double(Syscall.wallClockNanoseconds()) / 1e9 }
}
