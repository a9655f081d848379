import ArgumentParser
import Foundation
import TrainingMath

/// `--format csv|libsvm` on the command line.
extension DataFormat: ExpressibleByArgument {
  public init?(argument: String) { try? self.init(parsing: argument) }
}

/// Loads a libsvm / svmlight file (see `SparseDataset(libsvm:)`); errors name the
/// file, and for bad lines the line, the token and what is wrong.
func loadSparseDataset(_ path: String) throws -> SparseDataset {
  let bytes: [UInt8]
  do {
    bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  } catch {
    throw Failure(message: "cannot read data file \(path): \(error.localizedDescription)")
  }
  do {
    return try SparseDataset(libsvm: bytes)
  } catch {
    throw Failure(message: "data file \(path): \(error)")
  }
}

/// Writes `bytes` to `path` ("-": stdout); a failure names the file.
func writeDataFile(_ bytes: [UInt8], to path: String) throws {
  if path == "-" {
    FileHandle.standardOutput.write(Data(bytes))
    return
  }
  do {
    try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
  } catch {
    throw Failure(message: "cannot write \(path): \(error.localizedDescription)")
  }
}
