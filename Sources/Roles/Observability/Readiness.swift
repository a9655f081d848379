import Synchronization
import SystemCalls

/// Whether this process is ready for work, for the metrics endpoint's `/readyz`
/// (a Kubernetes readiness probe). Each role marks it where its state changes; the
/// HTTP thread reads it. Marking is lock-free and allocation-free, so a role may mark it per reply.
public final class Readiness: Sendable {
  /// What the role waits for, e.g. "a reply from the server".
  public let awaiting: String
  /// Ready only while the last mark is at most this old (nil: ready until marked not ready).
  public let staleAfterMilliseconds: UInt64?
  /// `MonotonicClock.milliseconds()` of the last mark; 0 before the first, or after `markNotReady`.
  private let lastMarked = Atomic<UInt64>(0)

  /// A flag that is not ready until `markReady` is called.
  public init(awaiting: String, staleAfterMilliseconds: Int? = nil) {
    self.awaiting = awaiting
    self.staleAfterMilliseconds = staleAfterMilliseconds.map { UInt64(max(1, $0)) }
  }

  /// Marks the role ready as of `now` (a worker: a reply arrived; the coordinator: its
  /// subscription was confirmed or renewed; the server: it serves).
  public func markReady(now: UInt64 = MonotonicClock.milliseconds()) {
    lastMarked.store(max(1, now), ordering: .relaxed)
  }

  /// Marks the role not ready (it is stopping).
  public func markNotReady() { lastMarked.store(0, ordering: .relaxed) }

  /// Whether the role is ready, and why not when it is not.
  public func check(now: UInt64 = MonotonicClock.milliseconds()) -> (ready: Bool, reason: String) {
    let last = lastMarked.load(ordering: .relaxed)
    guard last != 0 else { return (false, "waiting for \(awaiting)") }
    if let stale = staleAfterMilliseconds, now >= last, now - last > stale {
      return (false, "\(now - last) ms since \(awaiting) (limit \(stale) ms)")
    }
    return (true, "ready")
  }
}
