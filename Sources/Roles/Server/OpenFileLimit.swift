import SystemCalls

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
    guard var limit = try? ResourceLimits.openFiles() else { return nil }
    if limit.soft < limit.hard {
      let raised = ResourceLimit(soft: limit.hard, hard: limit.hard)
      if (try? ResourceLimits.setOpenFiles(raised)) != nil { limit = raised }
    }
    return Int(clamping: limit.soft)  // RLIM_INFINITY is the largest value
  }

  /// The most connections a process with `limit` open descriptors can hold.
  public static func connections(within limit: Int) -> Int { max(0, limit - reserve) }
}
