/// Whole files: read at once, written durably, listed, inspected. Every failure
/// is a `SystemCallError` naming the file and keeping errno; interrupted calls
/// are retried.
public enum FileIO {
  /// The bytes of `path`, at most `limit` of them (a larger file is read only
  /// that far). Throws "cannot read PATH: ..." when it cannot be opened or read.
  /// The read buffer is cleared before it is freed, and a file of up to 64 KiB
  /// is read without regrowing the result, so a secret key read this way leaves
  /// one copy in memory: the result, which the caller clears.
  public static func read(_ path: String, limit: Int = .max) throws(SystemCallError) -> [UInt8] {
    let fd = try Syscall.open(path, Syscall.readFlags, operation: "read")
    defer { Syscall.close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: min(limit, 1 << 16))
    bytes.reserveCapacity(chunk.count)
    defer { chunk.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
    while bytes.count < limit {
      let wanted = min(chunk.count, limit - bytes.count)
      let count = try chunk.withUnsafeMutableBytes { buffer in
        Result { () throws(SystemCallError) in
          try Syscall.read(
            fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted]), path: path)
        }
      }.get()
      if count == 0 { break }
      bytes += chunk[0..<count]
    }
    return bytes
  }

  /// Replaces `path` with `bytes` so that a crash leaves either the old file or
  /// the new one, never a torn one: the bytes go to a temporary file beside it
  /// (`.tmp-PID-NAME`), which is fsynced and renamed over `path`, then the
  /// directory is fsynced so the rename itself survives a power loss. On failure
  /// the temporary file is removed and the error names the step and file, e.g.
  /// "cannot write DIR/.tmp-7-NAME: No space left on device (errno 28)".
  public static func writeAtomically(
    _ bytes: [UInt8], to path: String, permissions: UInt32 = 0o644
  ) throws(SystemCallError) {
    let (directory, name) = split(path)
    let temporary = directory + "/.tmp-\(Syscall.processID())-" + name
    do {
      try overwrite(bytes, at: temporary, permissions: permissions)
      try Syscall.rename(temporary, to: path)
    } catch {
      try? Syscall.unlink(temporary)
      throw error
    }
    syncDirectory(directory)
  }

  /// Creates `path` with `bytes` and `permissions`, refusing to replace an existing
  /// file ("cannot create PATH: File exists"), and fsyncs it.
  public static func createNew(
    _ bytes: [UInt8], at path: String, permissions: UInt32
  ) throws(SystemCallError) {
    try writeDurably(bytes, to: path, flags: Syscall.createExclusiveFlags, permissions: permissions)
  }

  /// Writes `bytes` over `path` in place (created if missing, truncated if not)
  /// and fsyncs it: durable, but a crash midway leaves a torn file, so use
  /// `writeAtomically` for anything read back after a crash.
  public static func overwrite(
    _ bytes: [UInt8], at path: String, permissions: UInt32 = 0o644
  ) throws(SystemCallError) {
    try writeDurably(bytes, to: path, flags: Syscall.createFlags, permissions: permissions)
  }

  private static func writeDurably(
    _ bytes: [UInt8], to path: String, flags: Int32, permissions: UInt32
  ) throws(SystemCallError) {
    let fd = try Syscall.open(path, flags, mode: permissions, operation: "create")
    defer { Syscall.close(fd) }
    try write(bytes, to: fd, path: path)
    try Syscall.fsync(fd, path: path)
  }

  /// Creates the directory `path` if it is missing (its parent must exist).
  public static func makeDirectory(_ path: String, permissions: UInt32) throws(SystemCallError) {
    try Syscall.mkdir(path, mode: permissions)
  }

  /// Creates the directory `path` and every missing parent (`mkdir -p`); one that
  /// exists already is fine.
  public static func makeDirectories(_ path: String, permissions: UInt32 = 0o755)
    throws(SystemCallError)
  {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
      prefix += component
      if component != "." && component != ".." { try Syscall.mkdir(prefix, mode: permissions) }
      prefix += "/"
    }
  }

  /// Removes the file `path`.
  public static func remove(_ path: String) throws(SystemCallError) {
    try Syscall.unlink(path)
  }

  /// The names in the directory `path` (no `.` or `..`), in no particular order.
  public static func names(inDirectory path: String) throws(SystemCallError) -> [String] {
    try Syscall.directoryEntries(path)
  }

  /// What `stat` says about a file.
  public struct Status: Sendable, Equatable {
    /// The permission bits, e.g. 0o600.
    public var permissions: UInt32
    /// The last modification, in seconds since 1970.
    public var modificationTime: Double
  }

  /// The permissions and modification time of `path`.
  public static func status(_ path: String) throws(SystemCallError) -> Status {
    let info = try Syscall.fileStatus(path)
    return Status(permissions: info.mode & 0o7777, modificationTime: info.modified)
  }

  private static func write(_ bytes: [UInt8], to fd: Int32, path: String)
    throws(SystemCallError)
  {
    try bytes.withUnsafeBytes { raw in
      Result { () throws(SystemCallError) in try Syscall.writeAll(fd, raw, path: path) }
    }.get()
  }

  /// Fsyncs a directory so a rename in it is durable; a failure there changes
  /// nothing the caller can act on, so it is not reported.
  private static func syncDirectory(_ directory: String) {
    guard let fd = try? Syscall.open(directory, Syscall.directoryFlags, operation: "open")
    else { return }
    try? Syscall.fsync(fd, path: directory)
    Syscall.close(fd)
  }

  /// The directory and the name of `path` ("." for a bare name).
  private static func split(_ path: String) -> (directory: String, name: String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let directory = String(path[..<slash])
    return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
  }
}
