import ArgumentParser
import Roles
import WireProtocol

/// `pstrain checkpoint`: look inside checkpoint files.
struct CheckpointCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "checkpoint", abstract: "Inspect checkpoint files.", subcommands: [Show.self])

  /// `pstrain checkpoint show FILE`: verify a checkpoint and print what it holds.
  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Verify a checkpoint's checksum and print its version, weights and progress.",
      discussion: "Exits 1 with the reason when the file is corrupt, truncated or not a checkpoint."
    )

    @Argument(help: "The checkpoint file.")
    var file: String

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
      try runReportingErrors {
        let checkpoint = try CheckpointStore.read(file)
        let sequences = checkpoint.sequences.map { "\"\($0.workerID)\":\($0.sequence)" }
        if json {
          print(
            "{\"version\":\(checkpoint.version),\"gradients_applied\":\(checkpoint.gradientsApplied),"
              + "\"mode\":\"\(checkpoint.mode)\",\"model\":\(JSON.string(checkpoint.model.description)),"
              + "\"weights\":\(JSON.numbers(checkpoint.parameters)),"
              + "\"epoch\":\(checkpoint.work.map { String($0.epoch) } ?? "null"),"
              + "\"last_sequences\":{\(sequences.joined(separator: ","))}}")
        } else {
          print("checkpoint \(file): ok")
          print(
            "  version   \(checkpoint.version) (\(checkpoint.gradientsApplied) gradients applied)")
          print(
            "  training  \(checkpoint.mode), \(checkpoint.optimizer.settings) at step \(checkpoint.optimizer.step)"
          )
          for line in modelLines(checkpoint.model) { print(line) }
          print(
            "  weights   \(checkpoint.parameters.prefix(8).map { "\($0)" }.joined(separator: " "))")
          if let work = checkpoint.work {
            print(
              "  epoch     \(epochProgress(work.epoch, of: work.epochs)), \(work.nextRows.count) chunks"
            )
          }
          print(
            "  workers   \(checkpoint.sequences.count) known (last sequences kept for exactly-once)"
          )
        }
      }
    }
  }
}
