import ArgumentParser
import Roles
import WireProtocol

/// `pstrain model`: look inside saved-model files.
struct ModelCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "model", abstract: "Inspect saved-model files.", subcommands: [Show.self])

  /// `pstrain model show FILE`: verify a saved model and print what it holds.
  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Verify a saved model's checksum and print its model, tensors and origin.",
      discussion:
        "Exits 1 with the reason when the file is corrupt, truncated, not a saved model, or holds a model this build cannot compute."
    )

    @Argument(help: "The saved-model file (from pstrain train --save-model).")
    var file: String

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
      try runReportingErrors {
        let (saved, _) = try SavedModelFile.load(file)
        let dataset = saved.dataset.map {
          "{\"rows\":\($0.rows),\"fingerprint\":\($0.fingerprint)}"
        }
        if json {
          let tensors = saved.model.layout.map {
            "{\"name\":\(JSON.string($0.name)),\"shape\":[\($0.shape.map(String.init).joined(separator: ","))],\"type\":\"\($0.elementType)\"}"
          }
          print(
            "{\"model\":\(JSON.string(saved.model.name)),\"tensors\":[\(tensors.joined(separator: ","))],"
              + "\"version\":\(saved.version),\"gradients_applied\":\(saved.gradientsApplied),"
              + "\"dataset\":\(dataset ?? "null"),\"created_by\":\(JSON.string(saved.createdBy)),"
              + "\"weights\":\(JSON.numbers(saved.weights))}")
          return
        }
        print("model \(file): ok")
        for line in modelLines(saved.model) { print(line) }
        print(
          "  trained     version \(saved.version) (\(saved.gradientsApplied) gradients applied)")
        if let data = saved.dataset { print("  data        \(data)") }
        print("  created by  \(saved.createdBy)")
        print("  weights     \(weightsText(saved.weights))")
      }
    }
  }
}

/// The lines that show a model: its name and parameter count, then each
/// tensor with its shape (`layer1.weight [64,128]`), as `model show` and
/// `checkpoint show` print them.
func modelLines(_ model: ModelDescriptor) -> [String] {
  ["  model       \(model.name) (\(model.layout.totalCount) parameters)"]
    + model.layout.map {
      "    \($0.name) [\($0.shape.map(String.init).joined(separator: ","))]"
        + ($0.elementType == .float64 ? "" : " \($0.elementType)")
    }
}
