import Foundation
import SystemCalls

/// Ties the roles `pstrain train` starts to its life: when `train` dies, however it
/// dies (`kill -9` included), its server, coordinator and workers die with it instead
/// of training on as orphans.
///
/// `train` names itself in the child's environment (`variable`); the child, first
/// thing in `main`, asks the kernel for SIGKILL when its parent dies
/// (PR_SET_PDEATHSIG), then checks that the parent is still the one named: if it
/// died between the spawn and that request, the child was already handed to another
/// process and exits at once. The request survives `exec` and is made by the child,
/// because Foundation's `Process` has no hook between fork and exec.
///
/// PDEATHSIG fires when the *thread* that spawned the child ends, not the process:
/// `train` spawns its children from the main thread, which lives as long as it does.
/// SIGKILL rather than SIGTERM: nobody is left to read what a child would say on its
/// way out, and a child stuck in a wait must not outlive its parent either.
///
/// A child of `train` also ignores SIGINT: Ctrl-C at a terminal reaches the whole
/// foreground process group, and `train` stops its cluster in order (workers and
/// coordinator first, so their last state can still be read, then the servers).
enum ParentDeath {
  /// The environment variable naming the parent's pid. It does not start with
  /// `PSTRAIN_`, which names flags (see `LayeredConfiguration`).
  static let variable = "_PSTRAIN_PARENT_PID"

  /// The environment for a child bound to this process.
  static func childEnvironment() -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment[variable] = "\(ProcessControl.id)"
    return environment
  }

  /// In a child started by `train`: dies with the parent, leaves SIGINT to it.
  /// Does nothing in a process started otherwise.
  static func bindToParentIfStartedByTrain() {
    guard let text = ProcessControl.takeEnvironmentVariable(variable), let parent = Int32(text)
    else { return }  // taken: not inherited by anything this process starts
    try? ProcessControl.requestSignalOnParentDeath(.kill)
    // The parent died before the request took effect: we were reparented already.
    if ProcessControl.parentID != parent { ProcessControl.exitImmediately(1) }
    Signals.ignore(.interrupt)
  }
}
