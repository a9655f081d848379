import CZeroMQ

/// A failed libzmq call, keeping the `errno` it reported so callers can tell
/// a retryable condition (EAGAIN, EINTR) from a terminated context (ETERM).
public struct ZMQError: Error, Equatable, CustomStringConvertible, Sendable {
  /// The `errno` value libzmq reported.
  public let code: Int32
  /// The libzmq function that failed, for the message.
  public let operation: String

  /// Captures `zmq_errno()` for the call that just failed.
  static func last(_ operation: String) -> ZMQError {
    ZMQError(code: zmq_errno(), operation: operation)
  }

  /// Creates an error from an explicit errno value.
  public init(code: Int32, operation: String) {
    self.code = code
    self.operation = operation
  }

  /// The operation would block (non-blocking call or timeout).
  public var isAgain: Bool { code == EAGAIN }
  /// A signal interrupted the call; retrying is safe.
  public var isInterrupted: Bool { code == EINTR }
  /// The context was terminated; the socket must be closed.
  public var isTerminated: Bool { code == ETERM }

  /// libzmq's text for the errno, e.g. "Address already in use".
  public var reason: String { String(cString: zmq_strerror(code)) }

  public var description: String { "\(operation): \(reason) (errno \(code))" }
}
