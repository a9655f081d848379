/// The data file formats pstrain reads: dense CSV (`Dataset(csv:)`) or sparse
/// libsvm / svmlight (`SparseDataset(libsvm:)`). A file's format comes from an
/// explicit `--format`, else from its extension, so sparse files need no flag.
public enum DataFormat: String, Equatable, Hashable, Sendable, CaseIterable {
  /// Comma-separated numbers with a header.
  case csv
  /// `label id:value id:value ...` per line.
  case libsvm

  /// The extensions read as libsvm without `--format` (compared case-insensitively).
  public static let libsvmExtensions = ["libsvm", "svm", "svmlight"]

  /// `explicit` when given (a `--format` flag); otherwise libsvm for a path
  /// ending in `.libsvm`, `.svm` or `.svmlight`, and CSV for anything else.
  public init(path: String, explicit: DataFormat? = nil) {
    if let explicit {
      self = explicit
      return
    }
    let name = path.split(separator: "/").last ?? ""
    guard let dot = name.lastIndex(of: "."), dot != name.startIndex else {
      self = .csv
      return
    }
    let fileExtension = name[name.index(after: dot)...].lowercased()
    self = Self.libsvmExtensions.contains(fileExtension) ? .libsvm : .csv
  }

  /// The format named `text` on a command line (`csv`, `libsvm`, or `svmlight`
  /// for libsvm); an error lists the names.
  public init(parsing text: String) throws(TrainingMathError) {
    switch text.lowercased() {
    case "csv": self = .csv
    case "libsvm", "svmlight", "svm": self = .libsvm
    default:
      throw .invalidDataFormat("unknown data format \"\(text.prefix(40))\"; use csv or libsvm")
    }
  }
}
