#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The process's limit on open file descriptors. A server holds one TCP
/// connection, so one descriptor, per worker and client; the usual soft limit
/// of 1024 would refuse connections well before a cluster of 1,000 workers.
public enum OpenFileLimit {
  /// Descriptors the server needs besides its connections (libzmq's own,
  /// logs, checkpoints, metrics).
  public static let reserve = 64

  /// Raises the soft limit to the hard limit (allowed without privileges) and
  /// returns the soft limit now in force; nil if it cannot be read.
  @discardableResult
  public static func raiseToHardLimit() -> Int? {
    var limit = rlimit()
    #if canImport(Glibc)
      let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
      let resource = RLIMIT_NOFILE
    #endif
    guard getrlimit(resource, &limit) == 0 else { return nil }
    if limit.rlim_cur < limit.rlim_max {
      var raised = limit
      raised.rlim_cur = limit.rlim_max
      if setrlimit(resource, &raised) == 0 { limit = raised }
    }
    return Int(clamping: limit.rlim_cur)  // RLIM_INFINITY is the largest value
  }

  /// The most connections a process with `limit` open descriptors can hold.
  public static func connections(within limit: Int) -> Int { max(0, limit - reserve) }
}
