/// A failed system call, keeping what was attempted, on which file, and the
/// `errno` the C library reported, so a caller can tell a full disk (ENOSPC)
/// from a missing file (ENOENT) and a person reads one plain sentence:
/// "cannot write /x/y: No space left on device (errno 28)".
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
  /// What was attempted, as a verb phrase: "write", "create", "read secret key file".
  public var operation: String
  /// The file or directory it was attempted on, if any.
  public var path: String?
  /// For a rename, the path the file was to get.
  public var destination: String?
  /// The `errno` value.
  public var errno: Int32

  /// An error for `operation` on `path` that failed with `errno`.
  public init(operation: String, path: String?, destination: String? = nil, errno: Int32) {
    self.operation = operation
    self.path = path
    self.destination = destination
    self.errno = errno
  }

  /// Whether the call failed because the file already exists (EEXIST).
  public var isFileExists: Bool { errno == Syscall.fileExistsErrno }

  /// The C library's text for `errno`, e.g. "No space left on device".
  public var reason: String { Syscall.describe(errno: errno) }

  /// The same failure described as `operation` ("create checkpoint directory"),
  /// for a caller that knows better what the file was for.
  public func describing(_ operation: String) -> SystemCallError {
    var copy = self
    copy.operation = operation
    return copy
  }

  public var description: String {
    var subject = path.map { " \($0)" } ?? ""
    if let destination { subject += " to \(destination)" }
    return "cannot \(operation)\(subject): \(reason) (errno \(errno))"
  }
}
