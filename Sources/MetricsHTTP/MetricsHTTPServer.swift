import NIOCore
import NIOHTTP1
import NIOPosix

/// The limits that keep a public HTTP endpoint answering while some clients misbehave.
public struct MetricsHTTPLimits: Sendable {
  /// Largest request line plus headers, in bytes; more gets 431 and the connection closed.
  public var maximumRequestHeadBytes = 8192
  /// Most connections open at once; one more closes the oldest that is not being answered
  /// (preferring connections that never completed a request), so a new scrape gets in.
  public var maximumConnections = 64
  /// A request head must arrive whole within this many seconds of its first byte (or of
  /// the connection opening), or the connection is closed: slow and silent clients.
  public var requestHeadSeconds: Int64 = 5
  /// A response must be taken by the client within this many seconds, or the connection is
  /// closed: clients that read nothing.
  public var responseSeconds: Int64 = 10
  /// Most responses written but not yet taken by the client (pipelined requests); one more
  /// closes the connection. Reading also pauses while 64 KiB of answers wait to be sent.
  public var maximumPendingResponses = 64
  /// An idle kept-alive connection is closed after this many seconds (Prometheus scrapes
  /// every 15 to 60 s and reuses its connection).
  public var idleSeconds: Int64 = 90

  /// The defaults.
  public init() {}
}

/// What `/readyz` answers.
public struct ProbeAnswer: Sendable {
  /// Whether the role is ready (200) or not (503).
  public var ready: Bool
  /// One line for the body, e.g. "waiting for a reply from the server".
  public var detail: String

  /// An answer.
  public init(ready: Bool, detail: String) {
    self.ready = ready
    self.detail = detail
  }
}

/// Why the metrics endpoint could not start.
public struct MetricsHTTPError: Error, CustomStringConvertible {
  /// What went wrong, with the address.
  public var description: String
}

/// The pages the endpoint serves; called on the endpoint's own thread.
struct MetricsPages: Sendable {
  let metrics: @Sendable () -> [UInt8]
  let readiness: @Sendable () -> ProbeAnswer
}

/// Serves Prometheus text at `/metrics` (and `/`), `/healthz` (the process is up) and
/// `/readyz` (the role is ready) over HTTP/1.1 with swift-nio, on one event-loop thread of
/// its own, so neither the training loop nor a misbehaving client can stall the other.
/// Only GET and HEAD are served; see `MetricsHTTPLimits` for what a client may do.
public final class MetricsHTTPServer: Sendable {
  /// The address actually bound, e.g. `127.0.0.1:9100`.
  public let address: String
  private let group: MultiThreadedEventLoopGroup
  private let listener: any Channel
  private let sweep: RepeatedTask

  /// Binds `host:port` (port 0 picks a free one) and starts serving. `metrics` gives the
  /// current Prometheus text, `readiness` the `/readyz` answer; `log` is told once per kind
  /// of limit when the endpoint first refuses a client for it.
  public init(
    host: String, port: Int, limits: MetricsHTTPLimits = MetricsHTTPLimits(),
    metrics: @escaping @Sendable () -> [UInt8],
    readiness: @escaping @Sendable () -> ProbeAnswer,
    log: @escaping @Sendable (String) -> Void
  ) throws(MetricsHTTPError) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let table = ConnectionTable(limits: limits, refusals: RefusalLog(log: log))
    let pages = MetricsPages(metrics: metrics, readiness: readiness)
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 256)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          let connection = table.admit(channel)
          let budget = HeadBudget()
          let pipeline = channel.pipeline.syncOperations
          try pipeline.addHandler(RequestHeadGuard(connection: connection, budget: budget))
          try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
          try pipeline.addHandler(
            RequestHeadObserver(budget: budget),
            position: .after(pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)))
          try pipeline.addHandler(
            MetricsRequestHandler(connection: connection, pages: pages, budget: budget))
        }
      }
    do {
      listener = try bootstrap.bind(host: host, port: port).wait()
    } catch {
      try? group.syncShutdownGracefully()
      throw MetricsHTTPError(description: "cannot serve metrics on \(host):\(port): \(error)")
    }
    let bound = listener.localAddress
    let boundHost = bound?.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? host
    address = "\(boundHost):\(bound?.port ?? port)"
    self.group = group
    sweep = group.next().scheduleRepeatedTask(
      initialDelay: .milliseconds(250), delay: .milliseconds(250)
    ) { _ in table.closeExpired() }
  }

  /// Stops serving and closes every connection.
  public func stop() {
    sweep.cancel()
    try? listener.close().wait()
    try? group.syncShutdownGracefully()
  }
}
