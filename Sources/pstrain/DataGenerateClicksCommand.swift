import ArgumentParser
import Roles
import TrainingMath

extension DataCommand {
  /// `pstrain data generate-clicks`: a synthetic click log in libsvm format, for sparse models.
  struct GenerateClicks: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "generate-clicks",
      abstract: "Write a deterministic synthetic click log as a libsvm file.",
      discussion: """
        N rows of 30...50 distinct feature ids each (40 on average), drawn Zipf (exponent 1.4) over 0...F-1 \
        (id 0 the most common), of value 1, and a 0/1 click label drawn from a hidden logistic \
        teacher: a weight per id from --teacher-seed (the 1% most common ids, at least 1000, \
        carry signal; the long tail is noise) and a bias for a click rate near 25%. A train and \
        a test file made with different --seed and the same --teacher-seed and --features share \
        the teacher. The summary states the teacher's ROC AUC on the rows written: the best a \
        learner can expect.

        The same flags write the same bytes on every machine whose C library computes exp and \
        pow alike, as glibc does.
        """)

    @Option(help: "Number of rows (1...\(SparseDataset.maximumGeneratedClickRows)).")
    var rows: Int

    @Option(
      help: ArgumentHelp(
        "Feature ids 0...F-1 (\(SparseDataset.minimumGeneratedClickFeatures)...\(SparseDataset.maximumGeneratedClickFeatures)).",
        valueName: "F"))
    var features: Int

    @Option(help: "Random seed of the rows.")
    var seed: UInt64

    @Option(help: "Random seed of the teacher (shared by a train and its test file).")
    var teacherSeed: UInt64 = 1

    @Option(help: "Output libsvm file ('-' for stdout, without --json).")
    var out: String

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    func validate() throws {
      guard (1...SparseDataset.maximumGeneratedClickRows).contains(rows) else {
        throw ValidationError(
          "--rows must be 1...\(SparseDataset.maximumGeneratedClickRows), got \(rows)")
      }
      let featureRange =
        SparseDataset.minimumGeneratedClickFeatures...SparseDataset.maximumGeneratedClickFeatures
      guard featureRange.contains(features) else {
        throw ValidationError(
          "--features must be \(featureRange.lowerBound)...\(featureRange.upperBound), got \(features)"
        )
      }
      if json && out == "-" {
        throw ValidationError(
          "--json prints the summary on stdout, so --out - (the data on stdout) does not go with it"
        )
      }
    }

    func run() throws {
      let log: GeneratedClickLog
      do {
        log = try SparseDataset.clicks(
          rows: rows, features: features, seed: seed, teacherSeed: teacherSeed)
      } catch {
        throw Failure(message: "\(error)")
      }
      try writeDataFile(log.dataset.libsvmBytes(), to: out)
      if json {
        print(Self.json(log, features: features, out: out))
      } else {
        let line =
          "wrote \(log.dataset.count) rows, \(log.dataset.nonzeroCount) nonzeros over \(features) feature ids to \(out): click rate \(Self.rounded(log.clickRate)), teacher AUC \(Self.rounded(log.teacherAUC))"
        if out == "-" { printError(line) } else { print(line) }
      }
    }

    /// The summary as one JSON object.
    static func json(_ log: GeneratedClickLog, features: Int, out: String) -> String {
      "{\"rows\":\(log.dataset.count),\"nonzeros\":\(log.dataset.nonzeroCount),"
        + "\"features\":\(features),\"click_rate\":\(JSON.number(log.clickRate)),"
        + "\"teacher_auc\":\(JSON.number(log.teacherAUC)),"
        + "\"teacher_seed\":\(log.teacher.seed),"
        + "\"informative_features\":\(log.teacher.informativeFeatures),"
        + "\"fingerprint\":\"\(String(log.dataset.fingerprint, radix: 16))\","
        + "\"out\":\(JSON.string(out))}"
    }

    /// `value` to 4 decimals, for the text summary.
    static func rounded(_ value: Double) -> String {
      let scaled = (value * 10_000).rounded() / 10_000
      return "\(scaled)"
    }
  }
}
