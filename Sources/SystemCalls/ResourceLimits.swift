/// A soft and a hard limit on a resource; `unlimited` stands for RLIM_INFINITY.
public struct ResourceLimit: Sendable, Equatable {
  /// The limit in force; the process may raise it up to `hard`.
  public var soft: UInt64
  /// The ceiling; only a privileged process may raise it.
  public var hard: UInt64

  /// No limit (RLIM_INFINITY, the largest value).
  public static let unlimited = UInt64.max

  /// A limit pair.
  public init(soft: UInt64, hard: UInt64) {
    self.soft = soft
    self.hard = hard
  }
}

/// The process's resource limits (getrlimit/setrlimit).
public enum ResourceLimits {
  /// The limit on open file descriptors (RLIMIT_NOFILE).
  public static func openFiles() throws(SystemCallError) -> ResourceLimit {
    let limit = try Syscall.openFilesLimit()
    return ResourceLimit(soft: limit.soft, hard: limit.hard)
  }

  /// Sets the limit on open file descriptors.
  public static func setOpenFiles(_ limit: ResourceLimit) throws(SystemCallError) {
    try Syscall.setOpenFilesLimit(soft: limit.soft, hard: limit.hard)
  }
}
