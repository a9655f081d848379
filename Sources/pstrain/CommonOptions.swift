import ArgumentParser
import Roles
import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// Where the server is, for every client command.
struct ConnectOptions: ParsableArguments {
  @Option(
    name: .long,
    help:
      "The server's endpoint, e.g. tcp://10.0.0.5:5555; for server shards, all of them in shard order, comma-separated."
  )
  var connect: String

  @Option(name: .long, help: "How long to wait for each reply, in milliseconds.")
  var timeoutMs: Int = 10_000

  @Option(help: "This client's CURVE key pair file (from pstrain keygen); encrypts the connection.")
  var curveSecretKey: String?

  @Option(help: "The server's CURVE public key file (.pub), with --curve-secret-key.")
  var serverKey: String?

  func validate() throws {
    for endpoint in endpoints {
      try validateEndpoint(endpoint, flag: "--connect", binding: false)
    }
    guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be > 0") }
    guard (curveSecretKey == nil) == (serverKey == nil) else {
      throw ValidationError("--curve-secret-key and --server-key go together")
    }
  }

  /// The CURVE settings, when keys were given.
  func security() throws -> ClientSecurity? {
    guard let curveSecretKey, let serverKey else { return nil }
    return ClientSecurity(
      keyPair: try CurveKeyFiles.readKeyPair(curveSecretKey),
      serverKey: try CurveKeyFiles.readPublicKey(serverKey))
  }

  /// The same flags, to pass on to a child process.
  var arguments: [String] {
    ["--connect", connect, "--timeout-ms", "\(timeoutMs)"]
      + (curveSecretKey.map { ["--curve-secret-key", $0] } ?? [])
      + (serverKey.map { ["--server-key", $0] } ?? [])
  }

  /// The endpoints listed in `--connect`.
  var endpoints: [String] { connect.split(separator: ",").map(String.init) }

  /// A link to the server (or to all its shards), with its own context. A
  /// request unanswered for 2 s tells `notice` so, once (standard error by default).
  func open(
    routingID: [UInt8]? = nil, notice: @escaping (String) -> Void = printToStandardError
  ) throws -> (Context, any ServerLink) {
    let context = try Context()
    let security = try security()
    let connections = try endpoints.map { endpoint in
      let connection = try ServerConnection(
        context: context, endpoint: endpoint, routingID: routingID, security: security)
      connection.quietWaitNotice = notice
      return connection
    }
    if connections.count == 1 { return (context, connections[0]) }
    let link = try ShardedServerLink(connections: connections, timeoutMilliseconds: timeoutMs)
    link.quietWaitNotice = notice
    return (context, link)
  }

  /// The server's status now, on a link of its own (nil if it does not answer
  /// within `timeoutMilliseconds`): to say what a waiting worker waits for.
  func statusNow(timeoutMilliseconds: Int) -> ServerStatus? {
    guard let (context, link) = try? open(notice: { _ in }) else { return nil }
    defer { withExtendedLifetime(context) {} }
    return try? link.status(timeoutMilliseconds: timeoutMilliseconds)
  }
}

/// Loads `--data FILE`, or the tutorial's two samples when no file is named; the
/// label is `labelColumn` if given (see `Dataset(csv:labelColumn:)`).
func loadDataset(_ path: String?, labelColumn: String? = nil) throws -> Dataset {
  guard let path else { return .seed }
  let text: String
  do {
    text = try String(contentsOfFile: path, encoding: .utf8)
  } catch {
    throw Failure(message: "cannot read data file \(path): \(error.localizedDescription)")
  }
  do {
    return try Dataset(csv: text, labelColumn: labelColumn)
  } catch {
    throw Failure(message: "data file \(path): \(error)")
  }
}

/// `--mode`: `async` or `sync`, as the command line spells them.
enum ModeArgument: String, ExpressibleByArgument, CaseIterable {
  case async, sync, ssp

  /// The protocol's mode.
  var mode: ConsistencyMode {
    switch self {
    case .async: .async
    case .sync: .sync
    case .ssp: .ssp
    }
  }
}

/// A failure already explained on stderr; exits with `code`.
struct Failure: Error, CustomStringConvertible {
  var message: String
  var code: Int32 = 1
  var description: String { message }
}

/// Prints `message` to stderr with the `pstrain:` prefix.
func printError(_ message: String) {
  printToStandardError("pstrain: \(message)")
}

/// Prints `line` to stderr as it is.
func printToStandardError(_ line: String) {
  var stream = StandardError()
  print(line, to: &stream)
}

/// Standard error as a text stream.
struct StandardError: TextOutputStream {
  mutating func write(_ string: String) {
    StandardStreams.writeError(string)
  }
}

/// Runs `body`, turning role errors into a message and exit code `code`.
func runReportingErrors(code: Int32 = 1, _ body: () throws -> Void) throws {
  do {
    try body()
  } catch let error as ValidationError {
    throw error
  } catch let error as ExitCode {
    throw error
  } catch let error as Failure {
    printError(error.message)
    throw ExitCode(error.code)
  } catch {
    printError("\(error)")
    throw ExitCode(code)
  }
}

/// Checks that `dataset` is data `model` can train on: as many features as
/// the model's inputs and, for a classifier, every label a class it has.
func checkData(_ dataset: Dataset, fits model: some DifferentiableModel, path: String? = nil)
  throws
{
  let name = path.map { "data file \($0)" } ?? "the data"
  guard dataset.featureCount == model.inputCount else {
    throw Failure(
      message:
        "\(name) has \(dataset.featureCount) feature\(dataset.featureCount == 1 ? "" : "s"), the server's model \(model.name) takes \(model.inputCount)"
    )
  }
  guard model.isClassifier else { return }
  for (row, label) in dataset.labels.enumerated()
  where label.rounded() != label || label < 0 || label >= Double(model.outputCount) {
    throw Failure(
      message:
        "\(name), row \(row + 1): label \(label) is not a class of the model (0...\(model.outputCount - 1))"
    )
  }
}
