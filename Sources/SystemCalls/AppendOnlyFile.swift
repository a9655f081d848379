/// A file created new and written only at its end, one `append` at a time,
/// each a `write` to the kernel (no buffer in this process, so a reader sees
/// every appended record at once, and a crash loses nothing appended): for logs
/// that other programs read while they grow, such as TensorBoard event files.
/// Not fsynced: a power loss may lose the last records, which a log can afford.
public final class AppendOnlyFile {
  /// The file's path, for messages.
  public let path: String
  private var descriptor: Int32?

  /// Creates `path` (refusing to replace an existing file: "cannot create PATH:
  /// File exists") with `permissions`, open for appending.
  public init(creating path: String, permissions: UInt32 = 0o644) throws(SystemCallError) {
    self.path = path
    descriptor = try Syscall.open(
      path, Syscall.appendNewFlags, mode: permissions, operation: "create")
  }

  deinit { close() }

  /// Appends `bytes` (all of them, continuing after short writes). Throws
  /// "cannot write PATH: No space left on device (errno 28)" and the like;
  /// after `close` it throws EBADF.
  public func append(_ bytes: [UInt8]) throws(SystemCallError) {
    guard let descriptor else {
      throw SystemCallError(operation: "write", path: path, errno: Syscall.badDescriptorErrno)
    }
    try bytes.withUnsafeBytes { raw in
      Result { () throws(SystemCallError) in try Syscall.writeAll(descriptor, raw, path: path) }
    }.get()
  }

  /// Closes the file; later appends fail. Closing twice does nothing.
  public func close() {
    if let descriptor { Syscall.close(descriptor) }
    descriptor = nil
  }
}
