import ArgumentParser
import Roles

/// `--quarantine` and its snapshot settings, shared by `server` and `train`
/// (which passes them to its server).
struct QuarantineOptions: ParsableArguments {
  @Flag(
    help:
      "Quarantine a worker whose failed audit the coordinator confirmed: refuse it from then on and (async mode) roll the parameters back to before its unvouched pushes."
  )
  var quarantine = false

  @Option(help: "With --quarantine: keep a rollback snapshot every N versions.")
  var snapshotEvery: UInt64 = QuarantinePolicy.defaultSnapshotEvery

  @Option(
    help:
      "With --quarantine: keep at most this many MiB of rollback snapshots (at least two are kept; past it a rollback may go back further than needed)."
  )
  var snapshotBudgetMb: Int = QuarantinePolicy.defaultSnapshotByteBudget >> 20

  func validate() throws {
    guard snapshotEvery >= 1 else { throw ValidationError("--snapshot-every must be >= 1") }
    guard (0...1_048_576).contains(snapshotBudgetMb) else {
      throw ValidationError("--snapshot-budget-mb must be 0...1048576")
    }
  }

  /// The policy, when `--quarantine` is given.
  var policy: QuarantinePolicy? {
    guard quarantine else { return nil }
    return QuarantinePolicy(
      snapshotEvery: snapshotEvery, snapshotByteBudget: snapshotBudgetMb << 20)
  }

  /// The flags again, for a server started by `train`.
  var arguments: [String] {
    guard quarantine else { return [] }
    return [
      "--quarantine", "--snapshot-every", "\(snapshotEvery)", "--snapshot-budget-mb",
      "\(snapshotBudgetMb)",
    ]
  }
}
