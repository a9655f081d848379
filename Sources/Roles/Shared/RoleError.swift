import SystemCalls
import WireProtocol
import ZeroMQ

/// Errors of the server, worker and coordinator roles, worded for the command line.
public enum RoleError: Error, Equatable, CustomStringConvertible {
  /// A flag or argument is unusable.
  case invalidArgument(String)
  /// The server refused a request.
  case refused(ErrorReply)
  /// The peer answered with something that does not fit the conversation.
  case unexpectedReply(expected: String, got: String)
  /// A reply was undecodable.
  case undecodable(DecodeError)
  /// No reply within the time limit.
  case timedOut(what: String, milliseconds: Int)
  /// A ZeroMQ call failed.
  case transport(ZMQError)
  /// A file, signal or process call failed ("cannot write PATH: No space left on device (errno 28)").
  case system(SystemCallError)
  /// The process was asked to stop.
  case interrupted
  /// Training diverged: at weights `version` the loss or gradient stopped being a
  /// finite number (`what` says which), so further pushes would be refused.
  case diverged(version: UInt64, what: String)

  public var description: String {
    switch self {
    case .invalidArgument(let text): text
    case .refused(let reply): "the server refused the request: \(reply)"
    case .unexpectedReply(let expected, let got): "expected \(expected) from the server, got \(got)"
    case .undecodable(let error): "the server's reply could not be decoded: \(error)"
    case .timedOut(let what, let ms):
      "no \(what) within \(ms) ms; is the server running and reachable at that address?"
    case .transport(let error): "ZeroMQ error: \(error)"
    case .system(let error): "\(error)"
    case .interrupted: "interrupted"
    case .diverged(let version, let what):
      "training diverged at version \(version): \(what); try a lower --lr"
    }
  }
}
