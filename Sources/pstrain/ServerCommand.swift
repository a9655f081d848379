import ArgumentParser
import Roles
import TrainingMath
import WireProtocol
import ZeroMQ

/// `pstrain server`: holds the parameters and applies gradients.
struct ServerCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "server",
    abstract: "Run a parameter server.",
    discussion: """
      Prints `listening ENDPOINT` once bound (a `*` port resolved), then serves until
      SIGINT or SIGTERM. async applies each gradient as it arrives; sync averages one
      gradient from every joined worker per step, after --workers workers have joined.
      """)

  @Option(help: "ZeroMQ endpoint to bind; tcp://127.0.0.1:* picks a free port.")
  var bind: String = "tcp://*:5555"

  @Option(help: "Workers a sync step waits for before the first step.")
  var workers: Int = 1

  @OptionGroup var training: ServerTrainingOptions

  func validate() throws {
    guard (1...Shard.maximumCount).contains(workers) else {
      throw ValidationError("--workers must be 1...\(Shard.maximumCount)")
    }
    guard bind.contains("://") else {
      throw ValidationError("--bind needs an endpoint such as tcp://*:5555, got \"\(bind)\"")
    }
  }

  func run() throws {
    try runReportingErrors {
      let model = ChainModel(layers: training.layers)
      let server = ParameterServer(
        configuration: ServerConfiguration(
          mode: training.mode.mode, requiredWorkers: workers,
          optimizer: try SGD(learningRate: training.lr),
          model: ModelCatalog.descriptor(of: model), initialParameters: model.initialWeights()))
      let context = try Context()
      let loop: ServerLoop
      do {
        loop = try ServerLoop(server: server, context: context, endpoint: bind)
      } catch {
        throw Failure(message: "cannot bind \(bind): \((error as? ZMQError)?.reason ?? "\(error)")")
      }
      if !isLoopback(loop.boundEndpoint) {
        printError(
          "warning: listening on \(loop.boundEndpoint) without encryption; any host that can reach it can push gradients"
        )
      }
      print("listening \(loop.boundEndpoint)")
      print(
        "server: \(training.mode) mode, model \(model.name) with \(training.layers) layers, lr \(training.lr)"
      )
      try loop.run(shouldStop: { ShutdownSignal.isRequested })
      let status = server.status
      print(
        "server: stopped at version \(status.version), \(status.gradientsApplied) gradients applied, \(status.rejected) rejected"
      )
    }
  }

  private func isLoopback(_ endpoint: String) -> Bool {
    endpoint.hasPrefix("tcp://127.") || endpoint.hasPrefix("tcp://[::1]")
      || endpoint.hasPrefix("tcp://localhost") || endpoint.hasPrefix("ipc://")
      || endpoint.hasPrefix("inproc://")
  }
}
