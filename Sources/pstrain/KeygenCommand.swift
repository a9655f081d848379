import ArgumentParser
import Roles

/// `pstrain keygen`: CURVE key pairs for servers and clients.
struct KeygenCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "keygen",
    abstract: "Create a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub.",
    discussion: """
      Give the server its .key with --curve-secret-key and a directory of the clients'
      .pub files with --authorized-keys. Give each worker, coordinator, status or audit its
      own .key with --curve-secret-key and the server's .pub with --server-key.
      """)

  @Option(help: "Directory to write the key files into.")
  var out: String

  @Option(help: "Base name of the key files.")
  var name: String = "pstrain"

  func validate() throws {
    guard !name.isEmpty, !name.contains("/") else {
      throw ValidationError("--name must be a file name without /")
    }
  }

  func run() throws {
    try runReportingErrors {
      let paths = try CurveKeyFiles.generate(directory: out, name: name)
      print("wrote \(paths.secret) (secret, keep it private) and \(paths.public)")
    }
  }
}
