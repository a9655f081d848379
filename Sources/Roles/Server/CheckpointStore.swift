import WireProtocol

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Checkpoint files in one directory, written atomically: the bytes go to a
/// temporary file, which is fsynced, renamed into place, and the directory is
/// fsynced, so a crash leaves either the old checkpoint or the new one, never a
/// torn file. The newest few are kept.
public struct CheckpointStore: Sendable {
  /// The directory.
  public let directory: String
  /// How many checkpoint files to keep.
  public let keep: Int

  /// A store in `directory` (created if missing).
  public init(directory: String, keep: Int = 3) throws(RoleError) {
    self.directory = directory
    self.keep = max(2, keep)
    if mkdir(directory, 0o755) != 0 && errno != EEXIST {
      throw .invalidArgument("cannot create checkpoint directory \(directory): \(Self.reason())")
    }
  }

  private static func reason() -> String { String(cString: strerror(errno)) }

  private static let prefix = "checkpoint-"
  private static let suffix = ".pstckpt"

  /// The file name for `version`: zero-padded so names sort by version.
  static func name(version: UInt64) -> String {
    let digits = String(version)
    return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
  }

  /// Writes `checkpoint` atomically and returns its path.
  @discardableResult
  public func write(_ checkpoint: ServerCheckpoint) throws(RoleError) -> String {
    let bytes = CheckpointCodec.encode(checkpoint)
    let path = directory + "/" + Self.name(version: checkpoint.version)
    let temporary = directory + "/.tmp-\(getpid())-" + Self.name(version: checkpoint.version)
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .invalidArgument("cannot create \(temporary): \(Self.reason())") }
    var written = 0
    while written < bytes.count {
      let result = bytes[written...].withUnsafeBytes {
        SwiftGlibc.write(fd, $0.baseAddress, $0.count)
      }
      if result < 0 {
        if errno == EINTR { continue }
        let reason = Self.reason()
        close(fd)
        unlink(temporary)
        throw .invalidArgument("cannot write \(temporary): \(reason)")
      }
      written += result
    }
    guard fsync(fd) == 0 else {
      let reason = Self.reason()
      close(fd)
      unlink(temporary)
      throw .invalidArgument("cannot fsync \(temporary): \(reason)")
    }
    close(fd)
    guard rename(temporary, path) == 0 else {
      let reason = Self.reason()
      unlink(temporary)
      throw .invalidArgument("cannot rename \(temporary) to \(path): \(reason)")
    }
    let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if directoryFD >= 0 {
      fsync(directoryFD)
      close(directoryFD)
    }
    prune()
    return path
  }

  /// Checkpoint file names, newest first.
  public func files() -> [String] {
    guard let handle = opendir(directory) else { return [] }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
      }
      if name.hasPrefix(Self.prefix) && name.hasSuffix(Self.suffix) { names.append(name) }
    }
    return names.sorted(by: >)
  }

  private func prune() {
    for name in files().dropFirst(keep) { unlink(directory + "/" + name) }
  }

  /// Reads and verifies the newest checkpoint, or nil when there is none. A
  /// corrupt newest file is refused (it is not skipped silently: resuming from
  /// an older state would forget applied pushes); the message names the older
  /// file that is still intact.
  public func latest() throws(RoleError) -> (path: String, checkpoint: ServerCheckpoint)? {
    let names = files()
    guard let newest = names.first else { return nil }
    let path = directory + "/" + newest
    do {
      return (path, try Self.read(path))
    } catch {
      let intact = names.dropFirst().first { (try? Self.read(directory + "/" + $0)) != nil }
      let advice =
        intact.map {
          "; the previous checkpoint \(directory)/\($0) is intact: move \(newest) away to resume from it"
        }
        ?? "; no older intact checkpoint exists"
      throw .invalidArgument("checkpoint \(path) is unusable: \(error)\(advice)")
    }
  }

  /// Reads and verifies one checkpoint file.
  public static func read(_ path: String) throws(RoleError) -> ServerCheckpoint {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .invalidArgument("cannot open \(path): \(reason())") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = chunk.withUnsafeMutableBytes { SwiftGlibc.read(fd, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw .invalidArgument("cannot read \(path): \(reason())")
      }
      if count == 0 { break }
      bytes += chunk[0..<count]
    }
    do {
      return try CheckpointCodec.decode(bytes)
    } catch {
      throw .invalidArgument("\(error)")
    }
  }
}
