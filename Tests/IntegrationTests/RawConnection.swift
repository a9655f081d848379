import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A non-blocking TCP connection to a loopback port that sends raw bytes and reads only when
/// asked: a hostile or sloppy HTTP client. Closed when released.
final class RawConnection {
  let descriptor: Int32

  /// Connects to 127.0.0.1:`port`, waiting at most 5 s; `receiveBuffer` shrinks the kernel's
  /// receive buffer, so that unread answers back up to the server soon.
  init(port: Int, receiveBuffer: Int32? = nil) throws {
    descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw HarnessError("socket: errno \(errno)") }
    if var size = receiveBuffer {
      _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
    guard result == 0 || (errno == EINPROGRESS && poll(&ready, 1, 5000) == 1) else {
      close(descriptor)
      throw HarnessError("cannot connect to 127.0.0.1:\(port): errno \(errno)")
    }
  }

  deinit { close(descriptor) }

  /// Sends what the socket takes now (a peer that stopped reading takes less); returns the count.
  @discardableResult func send(_ bytes: [UInt8]) -> Int {
    bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
  }

  @discardableResult func send(_ text: String) -> Int { send(Array(text.utf8)) }

  /// Reads until `complete` holds for what arrived (or the peer closed), at most `seconds`.
  func receive(within seconds: Double = 10, until complete: ([UInt8]) -> Bool) -> (
    bytes: [UInt8], closed: Bool
  ) {
    var received: [UInt8] = []
    let deadline = Date().addingTimeInterval(seconds)
    var chunk = [UInt8](repeating: 0, count: 65536)
    while !complete(received), Date() < deadline {
      var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
      guard poll(&ready, 1, 100) == 1 else { continue }
      let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
      if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) { return (received, true) }
      if count > 0 { received += chunk[..<count] }
    }
    return (received, false)
  }

  /// Reads one HTTP response whose head says its `Content-Length` (with `hasBody` false, a
  /// HEAD response: the head alone): its head as text, its body, and whether the peer closed.
  func receiveResponse(hasBody: Bool = true) -> (head: String, body: [UInt8], closed: Bool) {
    var headEnd: Int?
    var length = 0
    let (bytes, closed) = receive { bytes in
      if headEnd == nil, let range = bytes.firstRange(of: Array("\r\n\r\n".utf8)) {
        headEnd = range.upperBound
        let head = String(decoding: bytes[..<range.lowerBound], as: UTF8.self).lowercased()
        length =
          head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
          .flatMap {
            Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
          }
          ?? 0
      }
      guard let headEnd else { return false }
      return bytes.count >= headEnd + (hasBody ? length : 0)
    }
    let end = headEnd ?? bytes.count
    return (
      String(decoding: bytes[..<end], as: UTF8.self), Array(bytes[end...]), closed
    )
  }
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a tool that cannot pick its own
/// and report it (another process could take it first; a test then fails, it does not hang).
func freeLoopbackPort() throws -> Int {
  guard let port = bindLoopbackBriefly(port: 0) else {
    throw HarnessError("cannot find a free port: errno \(errno)")
  }
  return port
}

/// Whether TCP `port` on 127.0.0.1 could be bound a moment ago.
func isFreeLoopbackPort(_ port: Int) -> Bool { bindLoopbackBriefly(port: port) != nil }

/// Binds a TCP socket on 127.0.0.1 to `port` (0: any free one) and closes it at once:
/// the port it got, or nil when it could not bind.
private func bindLoopbackBriefly(port: Int) -> Int? {
  let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(descriptor) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_port = UInt16(port).bigEndian
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
    }
  }
  return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}
