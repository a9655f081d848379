import Foundation
import Synchronization
import ZeroMQ

/// Serves `GET /metrics` over plain HTTP/1.1 from its own thread, with a ZeroMQ
/// STREAM socket (raw TCP), so Prometheus can scrape any pstrain process.
/// Every request gets the current text of `body`; the client closes the connection.
public final class MetricsEndpoint: Sendable {
  /// The address actually bound, e.g. `127.0.0.1:9100`.
  public let address: String
  private let thread: SocketThread

  /// Binds `host:port` (port 0 picks a free one) and starts serving.
  public init(
    context: Context, host: String, port: Int, body: @escaping @Sendable () -> [UInt8]
  ) throws(RoleError) {
    let ready = DispatchSemaphore(value: 0)
    let bound = Mutex<Result<String, RoleError>?>(nil)
    let endpoint = "tcp://\(host):\(port == 0 ? "*" : String(port))"
    thread = SocketThread { thread in
      let socket: Socket
      do {
        socket = try Socket(context, kind: .stream)
        try socket.set(.linger(milliseconds: 100))
        try socket.bind(endpoint)
        let last = try socket.lastEndpoint()
        bound.withLock { $0 = .success(String(last.dropFirst("tcp://".count))) }
      } catch {
        let reason = (error as? ZMQError)?.description ?? "\(error)"
        bound.withLock {
          $0 = .failure(.invalidArgument("cannot serve metrics on \(host):\(port): \(reason)"))
        }
        ready.signal()
        return
      }
      ready.signal()
      var requests: [[UInt8]: [UInt8]] = [:]  // bytes received so far, per connection
      while !thread.isStopping {
        guard (try? socket.waitForInput(timeoutMilliseconds: 100)) == true else { continue }
        while let message = try? socket.receiveMultipart(.dontWait), message.frames.count == 2 {
          let peer = message.frames[0].bytes
          let data = message.frames[1].bytes
          if data.isEmpty {  // a connection opened or closed
            requests[peer] = nil
            continue
          }
          requests[peer, default: []] += data
          guard let request = requests[peer], request.count <= 8192 else {
            requests[peer] = nil
            continue
          }
          guard request.firstRange(of: Array("\r\n\r\n".utf8)) != nil else { continue }
          requests[peer] = nil
          let line = String(decoding: request.prefix(while: { $0 != 13 }), as: UTF8.self)
          let response: [UInt8]
          if line.hasPrefix("GET /metrics ") || line.hasPrefix("GET / ") {
            let content = body()
            response =
              Array(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(content.count)\r\nConnection: close\r\n\r\n"
                  .utf8) + content
          } else {
            response = Array(
              "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
          }
          _ = try? socket.send(multipart: [Message(bytes: peer), Message(bytes: response)])
          // No explicit close: closing right after sending can cut the response short.
          // "Connection: close" makes the client close once it has read Content-Length.
        }
      }
      socket.close()
    }
    ready.wait()
    switch bound.withLock({ $0 }) {
    case .success(let address): self.address = address
    case .failure(let error): throw error
    case nil: throw .invalidArgument("metrics endpoint did not start")
    }
  }

  /// Stops serving.
  public func stop() { thread.stop() }
}
