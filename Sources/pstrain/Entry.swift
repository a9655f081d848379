import ArgumentParser
import BLAS
import Foundation
import Roles
import SystemCalls

/// Process entry: line-buffer stdout so that parents reading our pipe (such as
/// `pstrain train`) see each line as it is printed, then run the command line.
@main
enum Entry {
  static func main() {
    StandardStreams.lineBufferOutput()
    ShutdownSignal.install()
    ParentDeath.bindToParentIfStartedByTrain()
    // Several workers share a machine, one training loop each: one BLAS thread
    // per process, unless the environment asks for more (OPENBLAS_NUM_THREADS).
    if ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil { BLAS.setThreadCount(1) }
    let commandLine: ResolvedCommandLine
    do {
      commandLine = try LayeredConfiguration.resolveCommandLine()
    } catch {
      printError("\(error)")
      ProcessControl.exit(64)
    }
    CommandLineRunner.run(commandLine)
  }
}

/// `pstrain`: a distributed parameter-server trainer over ZeroMQ.
struct PStrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pstrain",
    abstract: "A parameter-server trainer over ZeroMQ, with gradient-consistency audits.",
    discussion: """
      Start a server, workers and a coordinator by hand, or let `pstrain train` start a
      whole cluster on loopback. `pstrain status` and `pstrain audit` inspect a running one.

      Every flag can also come from the environment (--dead-after-ms: PSTRAIN_DEAD_AFTER_MS,
      or PSTRAIN_SERVER_DEAD_AFTER_MS for the server only) or from a config file (--config FILE or PSTRAIN_CONFIG): `dead-after-ms = 5000` under
      [server], or under [common] for every command. The command line wins over the
      environment, which wins over the file.
      """,
    version: "0.1.0",
    subcommands: [
      TrainCommand.self, ServerCommand.self, WorkerCommand.self, CoordinatorCommand.self,
      AuditCommand.self, StatusCommand.self, DataCommand.self, CheckpointCommand.self,
      KeygenCommand.self, BenchCommand.self,
      GradientTableCommand.self,
    ]
  )

  /// ArgumentParser's own messages ("Missing value", validation errors) start like ours.
  static var _errorPrefix: String { "pstrain: " }
}
