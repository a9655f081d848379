import ArgumentParser
import Foundation
import TrainingMath

/// `pstrain data`: dataset tools.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data", abstract: "Dataset tools.",
    subcommands: [Generate.self, GenerateClicks.self, Describe.self])

  /// `pstrain data generate`: deterministic synthetic data, regression or classification.
  struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write deterministic synthetic data as CSV with a header.",
      discussion: """
        Without --classes: N rows x,label with x uniform in [-1, 1) and label = -x + noise \
        (Gaussian, standard deviation --noise), for regression.

        With --classes K: N rows f0,...,f{D-1},label of D = --features features and a class \
        label 0...K-1, balanced (row r has class r mod K): each class is two clusters of unit \
        noise on either side of an offset, which a linear model gets roughly right and a small \
        MLP better.

        The same flags write the same bytes on every machine (with --noise > 0, on machines \
        whose C library computes log and cos alike, as glibc does).
        """)

    @Option(help: "Number of rows (1...\(Dataset.maximumGeneratedRows)).")
    var rows: Int

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(
      help: ArgumentHelp(
        "Number of classes (2...\(Dataset.maximumGeneratedClasses)): classification data.",
        valueName: "K"))
    var classes: Int?

    @Option(
      help: ArgumentHelp(
        "Features per row (1...\(Dataset.maximumGeneratedFeatures)); with --classes only (default 2).",
        valueName: "D"))
    var features: Int?

    @Option(
      help: ArgumentHelp(
        "Standard deviation of Gaussian label noise; without --classes only (default 0).",
        valueName: "sigma"))
    var noise: Double?

    @Option(help: "Output CSV file ('-' for stdout).")
    var out: String

    func validate() throws {
      guard (1...Dataset.maximumGeneratedRows).contains(rows) else {
        throw ValidationError("--rows must be 1...\(Dataset.maximumGeneratedRows), got \(rows)")
      }
      if let features, !(1...Dataset.maximumGeneratedFeatures).contains(features) {
        throw ValidationError(
          "--features must be 1...\(Dataset.maximumGeneratedFeatures), got \(features)")
      }
      if let noise, !(noise.isFinite && noise >= 0) {
        throw ValidationError("--noise must be a finite number >= 0, got \(noise)")
      }
      guard let classes else {
        if let features, features != 1 {
          throw ValidationError(
            "--features \(features) needs --classes: without it the data is one feature x and a regression label"
          )
        }
        return
      }
      guard (2...Dataset.maximumGeneratedClasses).contains(classes) else {
        throw ValidationError(
          "--classes must be 2...\(Dataset.maximumGeneratedClasses), got \(classes)")
      }
      if noise != nil {
        throw ValidationError("--noise is for regression data; it does not go with --classes")
      }
    }

    func run() throws {
      let dataset: Dataset
      do {
        if let classes {
          dataset = try Dataset.generateClassification(
            features: features ?? 2, classes: classes, rows: rows, seed: seed)
        } else {
          dataset = try Dataset.generate(rows: rows, seed: seed, noise: noise ?? 0)
        }
      } catch {
        throw Failure(message: "\(error)")
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
      let shape =
        classes.map { ", \(dataset.featureCount) features, \($0) classes" } ?? ""
      printError("wrote \(rows) rows\(shape) to \(out)")
    }
  }
}
