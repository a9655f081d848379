import ArgumentParser
import Foundation
import TrainingMath

/// `pstrain data`: dataset tools.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data", abstract: "Dataset tools.", subcommands: [Generate.self])

  /// `pstrain data generate`: deterministic synthetic data.
  struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write N rows x,label with x uniform in [-1, 1) and label = -x + noise.",
      discussion: "The same --rows, --seed and --noise write the same bytes on every machine.")

    @Option(help: "Number of rows.")
    var rows: Int

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "Standard deviation of Gaussian label noise.")
    var noise: Double = 0

    @Option(help: "Output CSV file ('-' for stdout).")
    var out: String

    func run() throws {
      let dataset: Dataset
      do {
        dataset = try Dataset.generate(rows: rows, seed: seed, noise: noise)
      } catch {
        throw ValidationError("\(error)")
      }
      let text = dataset.csv()
      if out == "-" {
        print(text, terminator: "")
        return
      }
      do {
        try text.write(toFile: out, atomically: true, encoding: .utf8)
      } catch {
        printError("cannot write \(out): \(error.localizedDescription)")
        throw ExitCode(1)
      }
      printError("wrote \(rows) rows to \(out)")
    }
  }
}
