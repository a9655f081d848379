import ArgumentParser
import Roles
import TrainingMath

extension DataCommand {
  /// `pstrain data describe`: what a data file holds, as pstrain reads it.
  struct Describe: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Describe a CSV or libsvm data file: rows, features, label column, classes, fingerprint.",
      discussion: """
        Reads FILE as train and worker do. A libsvm file (.libsvm, .svm, .svmlight, or \
        --format libsvm) is described by its rows, nonzeros, distinct feature ids, id range and \
        click rate (the fraction of rows labelled 1). The labels are classes when every one is an integer \
        0...K-1 (K from --classes, or the largest label + 1); then the rows per class are \
        listed. The fingerprint is the one workers report when they join.
        """)

    @Argument(help: "The CSV or libsvm file.")
    var file: String

    @Option(help: "The file's format, csv or libsvm (default: libsvm for .libsvm/.svm/.svmlight).")
    var format: DataFormat?

    @Option(help: "The label's column (default: the column named label, else the last).")
    var labelColumn: String?

    @Option(
      help: ArgumentHelp(
        "Check that the labels are classes 0...K-1 (an error names the first row that is not).",
        valueName: "K"))
    var classes: Int?

    @Flag(help: "One JSON object instead of text.")
    var json = false

    func run() throws {
      if DataFormat(path: file, explicit: format) == .libsvm {
        let summary = SparseDataSummary(try loadSparseDataset(file))
        print(json ? summary.json() : summary.text(file: file))
        return
      }
      let dataset = try loadDataset(file, labelColumn: labelColumn)
      let classCount: Int?
      if let classes {
        do {
          classCount = try dataset.classCount(declared: classes)
        } catch {
          throw Failure(message: "data file \(file): \(error)")
        }
      } else {
        classCount = dataset.labelsAreClassIndices ? try? dataset.classCount() : nil
      }
      let rowsPerClass = classCount.map { dataset.rowsPerClass(classCount: $0) }
      print(
        json
          ? Self.json(dataset, classCount: classCount, rowsPerClass: rowsPerClass)
          : Self.text(dataset, file: file, classCount: classCount, rowsPerClass: rowsPerClass))
    }

    /// The description in words, a few lines.
    static func text(_ dataset: Dataset, file: String, classCount: Int?, rowsPerClass: [Int]?)
      -> String
    {
      let names = dataset.featureNames
      let shownNames =
        names.count <= 8
        ? names.joined(separator: ", ")
        : (names.prefix(4) + ["...", names.last!]).joined(separator: ", ")
      var lines = [
        "\(file): \(dataset.count) rows, \(dataset.featureCount) feature\(dataset.featureCount == 1 ? "" : "s") (\(shownNames)), label column \"\(dataset.labelName)\""
      ]
      let (low, high) = (dataset.labels.min() ?? 0, dataset.labels.max() ?? 0)
      if let classCount, let rowsPerClass {
        let counts = rowsPerClass.enumerated().prefix(20).map { "\($0.offset): \($0.element)" }
        let more = classCount > 20 ? ", ... (\(classCount) classes)" : ""
        lines.append(
          "labels: classes 0...\(classCount - 1); rows per class \(counts.joined(separator: ", "))\(more)"
        )
      } else {
        lines.append("labels: not classes (values \(low)...\(high))")
      }
      lines.append("fingerprint: \(String(dataset.fingerprint, radix: 16))")
      return lines.joined(separator: "\n")
    }

    /// The description as one JSON object.
    static func json(_ dataset: Dataset, classCount: Int?, rowsPerClass: [Int]?) -> String {
      let names = dataset.featureNames.map(JSON.string).joined(separator: ",")
      return "{\"rows\":\(dataset.count),\"features\":\(dataset.featureCount),"
        + "\"feature_names\":[\(names)],\"label_column\":\(JSON.string(dataset.labelName)),"
        + "\"labels_are_classes\":\(classCount != nil),"
        + "\"classes\":\(classCount.map(String.init) ?? "null"),"
        + "\"rows_per_class\":\(rowsPerClass.map { "[\($0.map(String.init).joined(separator: ","))]" } ?? "null"),"
        + "\"label_min\":\(JSON.number(dataset.labels.min() ?? 0)),"
        + "\"label_max\":\(JSON.number(dataset.labels.max() ?? 0)),"
        + "\"fingerprint\":\"\(String(dataset.fingerprint, radix: 16))\"}"
    }
  }
}
