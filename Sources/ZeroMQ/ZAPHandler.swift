import CZeroMQ
import Foundation
import Synchronization

/// A ZAP 1.0 handler (RFC 27): libzmq asks it, over `inproc://zeromq.zap.01`,
/// whether each connecting peer may in. It runs on its own thread with its own
/// REP socket and answers with `decide(mechanism, peer address, credentials)`:
/// for CURVE the credentials are the client's 32-byte public key.
public final class ZAPHandler: Sendable {
  /// What the handler is asked about one connection.
  public struct Request: Sendable {
    /// `NULL`, `PLAIN` or `CURVE`.
    public var mechanism: String
    /// The peer's IP address.
    public var address: String
    /// The mechanism's credentials (CURVE: the client's public key).
    public var credentials: [UInt8]
  }

  private let thread: SocketThread

  /// Binds the handler in `context` and starts its thread. It must be running
  /// before the socket it protects binds.
  public init(context: Context, decide: @escaping @Sendable (Request) -> Bool) throws(ZMQError) {
    let ready = DispatchSemaphore(value: 0)
    let failure = Failure()
    thread = SocketThread { thread in
      let socket: Socket
      do {
        socket = try Socket(context, kind: .reply)
        try socket.set(.linger(milliseconds: 0))
        try socket.bind("inproc://zeromq.zap.01")
      } catch {
        failure.error.withLock {
          $0 = error as? ZMQError ?? ZMQError(code: EINVAL, operation: "zap")
        }
        ready.signal()
        return
      }
      ready.signal()
      while !thread.isStopping {
        guard (try? socket.waitForInput(timeoutMilliseconds: 100)) == true,
          let request = try? socket.receiveMultipart(.dontWait)
        else { continue }
        let frames = request.frames.map(\.bytes)
        let text = { (index: Int) in
          index < frames.count ? String(decoding: frames[index], as: UTF8.self) : ""
        }
        // version, request id, domain, address, identity, mechanism, credentials...
        let allowed =
          frames.count >= 6 && text(0) == "1.0"
          && decide(
            Request(
              mechanism: text(5), address: text(3),
              credentials: frames.count > 6 ? frames[6] : []))
        let reply = [
          Message(string: "1.0"), Message(bytes: frames.count > 1 ? frames[1] : []),
          Message(string: allowed ? "200" : "400"),
          Message(string: allowed ? "OK" : "not authorized"), Message(string: ""),
          Message(string: ""),
        ]
        _ = try? socket.send(multipart: reply)
      }
      socket.close()
    }
    ready.wait()
    if let error = failure.error.withLock({ $0 }) { throw error }
  }

  /// Stops the thread and waits for it to close its socket.
  public func stop() { thread.stop() }

  /// A start-up error handed back from the handler thread.
  private final class Failure: Sendable {
    let error = Mutex<ZMQError?>(nil)
  }
}
