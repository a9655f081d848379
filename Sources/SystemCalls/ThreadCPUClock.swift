/// Processor time used by the calling thread (CLOCK_THREAD_CPUTIME_ID), to
/// measure what a piece of work costs in compute on a machine whose cores are
/// shared: time the thread waited for a core is not counted, as it is on a
/// monotonic clock.
public enum ThreadCPUClock {
  /// Nanoseconds of processor time this thread has used.
  public static func nanoseconds() -> UInt64 { Syscall.threadCPUNanoseconds() }

  /// Seconds of processor time `work` took on this thread, and its result.
  public static func measure<Result, Failure: Error>(
    _ work: () throws(Failure) -> Result
  ) throws(Failure) -> (seconds: Double, result: Result) {
    let start = nanoseconds()
    let result = try work()
    return (Double(nanoseconds() &- start) / 1e9, result)
  }
}
