import SystemCalls
import TrainingMath
import WireProtocol

/// Saved-model files on disk: written atomically like checkpoints (a
/// temporary file, fsynced, renamed into place, the directory fsynced), so a
/// reader or a crash never sees half a model; read back verified.
public enum SavedModelFile {
  /// Writes `saved` to `path` atomically, replacing any file there.
  public static func write(_ saved: SavedModel, to path: String) throws(RoleError) {
    do { try FileIO.writeAtomically(SavedModelCodec.encode(saved), to: path) } catch {
      throw .system(error)
    }
  }

  /// Reads and verifies the saved model in `path`.
  public static func read(_ path: String) throws(RoleError) -> SavedModel {
    let bytes: [UInt8]
    do { bytes = try FileIO.read(path) } catch { throw .system(error) }
    do {
      return try SavedModelCodec.decode(bytes)
    } catch {
      throw .invalidArgument("\(path): \(error)")
    }
  }

  /// Reads the saved model in `path` and builds its model, refusing a model
  /// this build cannot compute.
  public static func load(_ path: String) throws(RoleError) -> (
    saved: SavedModel, model: AnyDifferentiableModel
  ) {
    let saved = try read(path)
    do {
      return (saved, try ModelSpec.model(named: saved.model.name, layout: saved.model.layout))
    } catch {
      throw .invalidArgument("\(path): \(error) (the file's model: \(saved.model))")
    }
  }
}
