import SystemCalls
import WireProtocol

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
    do { try FileIO.makeDirectory(directory, permissions: 0o755) } catch {
      throw .system(error.describing("create checkpoint directory"))
    }
  }

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
    let path = directory + "/" + Self.name(version: checkpoint.version)
    do { try FileIO.writeAtomically(CheckpointCodec.encode(checkpoint), to: path) } catch {
      throw .system(error)
    }
    prune()
    return path
  }

  /// Checkpoint file names, newest first.
  public func files() -> [String] {
    let names = (try? FileIO.names(inDirectory: directory)) ?? []
    return names.filter { $0.hasPrefix(Self.prefix) && $0.hasSuffix(Self.suffix) }.sorted(by: >)
  }

  private func prune() {
    for name in files().dropFirst(keep) { try? FileIO.remove(directory + "/" + name) }
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
    let bytes: [UInt8]
    do { bytes = try FileIO.read(path) } catch { throw .system(error) }
    do {
      return try CheckpointCodec.decode(bytes)
    } catch {
      throw .invalidArgument("\(error)")
    }
  }
}
