/// Pausing the calling thread. A signal handler that runs during the pause ends
/// it early: a loop that sleeps between retries then sees a stop request at
/// once instead of after the whole pause, so callers must not assume the full
/// time has passed (read `MonotonicClock` when it matters).
public enum Sleep {
  /// Sleeps up to `milliseconds` (nothing for zero or less).
  public static func milliseconds(_ milliseconds: Int) {
    guard milliseconds > 0 else { return }
    Syscall.sleep(nanoseconds: UInt64(milliseconds) * 1_000_000)
  }

  /// Sleeps up to `microseconds` (nothing for zero or less).
  public static func microseconds(_ microseconds: Int) {
    guard microseconds > 0 else { return }
    Syscall.sleep(nanoseconds: UInt64(microseconds) * 1000)
  }
}
