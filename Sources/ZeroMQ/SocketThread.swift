import Foundation
import Synchronization

/// A thread that owns sockets and runs until asked to stop. Sockets belong to
/// one thread; helpers such as the ZAP handler and the metrics endpoint each
/// run their loop on one of these.
public final class SocketThread: Sendable {
  private let stopRequested = Atomic<Bool>(false)
  private let finished = DispatchSemaphore(value: 0)

  /// Starts `body` on a new thread; `body` should return soon after `isStopping`
  /// turns true.
  public init(_ body: @escaping @Sendable (SocketThread) -> Void) {
    Thread.detachNewThread { [self] in
      body(self)
      finished.signal()
    }
  }

  /// Whether `stop()` was called.
  public var isStopping: Bool { stopRequested.load(ordering: .relaxed) }

  /// Asks the thread to stop and waits until it has (idempotent).
  public func stop() {
    guard !stopRequested.exchange(true, ordering: .relaxed) else { return }
    finished.wait()
  }
}
