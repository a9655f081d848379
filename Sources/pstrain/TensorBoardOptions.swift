import ArgumentParser
import Logging
import Roles
import SystemCalls
import TrainingMath

/// `--tensorboard DIR`: TensorBoard event files, one run directory per role under
/// DIR (`server`, `server-K` with several shards, `coordinator`), written by
/// pstrain itself (docs/tensorboard.md lists the tags). View with
/// `tensorboard --logdir DIR`.
struct TensorBoardOptions: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "Write TensorBoard event files under DIR, one run directory per role (view with `tensorboard --logdir DIR`).",
      valueName: "dir"))
  var tensorboard: String?

  /// The arguments that pass the same directory to a role this command starts.
  var arguments: [String] { tensorboard.map { ["--tensorboard", $0] } ?? [] }

  /// Opens the event file of `run` under DIR (nil without `--tensorboard`): a
  /// directory that cannot be made or written stops the command here, before any
  /// training, with one line. A later write failure is logged once to `logger`.
  func open(run: String, logger: Logger) throws -> TensorBoardEventFile? {
    guard let tensorboard else { return nil }
    // Under a file-size limit (ulimit -f) a write then fails with EFBIG, like one
    // on a full disk, instead of killing the process.
    Signals.ignore(.fileSizeLimitExceeded)
    do {
      return try TensorBoardEventFile(
        logDirectory: tensorboard, run: run, warn: { logger.warning("\($0)") })
    } catch {
      throw Failure(message: "--tensorboard \(tensorboard): \(error)")
    }
  }

  /// Checks that DIR can be made and written, for a command that only passes it
  /// on (`pstrain train`): makes DIR and removes a probe file from it.
  func check() throws {
    guard let tensorboard else { return }
    do {
      try TensorBoardEventFile.checkWritable(logDirectory: tensorboard)
    } catch {
      throw Failure(message: "--tensorboard \(tensorboard): \(error)")
    }
  }

  /// The run directory of server shard `shard`: `server`, or `server-K` of several.
  static func serverRun(_ shard: Shard) -> String {
    shard.count > 1 ? "server-\(shard.index)" : "server"
  }

  /// The coordinator's run directory.
  static let coordinatorRun = "coordinator"
}
