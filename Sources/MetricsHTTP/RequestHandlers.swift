import NIOCore
import NIOHTTP1

/// Bytes a connection has sent since its last complete request head; shared by the
/// guard in front of the HTTP decoder and the handler behind it (both on the event loop).
final class HeadBudget {
  var bytesWithoutHead = 0
  var headArrived = false
  /// Set when the guard has answered 431: what the decoder says next is not the client's fault.
  var refused = false
  /// Set when a request is refused for its method or body: its body is not a request head,
  /// and the connection is closed once it is answered.
  var bodyFollows = false
}

extension HTTPRequestHead {
  /// Why this request is refused unanswered: a method other than GET or HEAD, or a body.
  var refusal: Refusal? {
    guard method == .GET || method == .HEAD else { return .methodNotAllowed }
    let declaredLength = headers["content-length"].first.flatMap { Int($0) } ?? 0
    if declaredLength > 0 || headers.contains(name: "transfer-encoding") { return .bodyRefused }
    return nil
  }
}

/// Counts the raw bytes in front of the HTTP decoder and refuses a request line plus
/// headers over `maximumRequestHeadBytes` with 431 (the decoder itself bounds headers
/// only at 80 KiB and the request line not at all). Reads nothing more while the answers
/// waiting to be sent exceed the write buffer's high-water mark: a client that pipelines
/// requests without reading the answers cannot make the server queue them without bound.
final class RequestHeadGuard: ChannelDuplexHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private let connection: Connection
  private let budget: HeadBudget
  private var readPaused = false

  func read(context: ChannelHandlerContext) {
    guard context.channel.isWritable else {
      readPaused = true
      return
    }
    context.read()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable && readPaused {
      readPaused = false
      context.read()
    }
    context.fireChannelWritabilityChanged()
  }

  init(connection: Connection, budget: HeadBudget) {
    self.connection = connection
    self.budget = budget
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !budget.refused else { return }
    guard !budget.bodyFollows else { return context.fireChannelRead(data) }
    let count = Self.unwrapInboundIn(data).readableBytes
    if budget.bytesWithoutHead == 0 { connection.enter(.readingHead) }
    budget.headArrived = false
    context.fireChannelRead(data)
    if budget.headArrived {
      budget.bytesWithoutHead = 0
      return
    }
    budget.bytesWithoutHead += count
    guard budget.bytesWithoutHead > connection.limits.maximumRequestHeadBytes else { return }
    budget.refused = true
    connection.refuse(.requestHeadTooLarge)
    let answer = ByteBuffer(
      string:
        "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    let channel = context.channel
    context.writeAndFlush(Self.wrapOutboundOut(answer)).whenComplete { _ in
      channel.close(promise: nil)
    }
  }
}

/// Sits right behind the HTTP decoder and tells the guard when a whole request head was
/// decoded (the pipelining handler further on holds back requests that arrive while one
/// is being answered, so the answering handler sees heads too late to count them).
final class RequestHeadObserver: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias InboundOut = HTTPServerRequestPart

  private let budget: HeadBudget

  init(budget: HeadBudget) { self.budget = budget }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if case .head(let head) = Self.unwrapInboundIn(data) {
      budget.headArrived = true
      if head.refusal != nil { budget.bodyFollows = true }
    }
    context.fireChannelRead(data)
  }
}

/// Answers each request head: GET or HEAD of `/metrics` (or `/`), `/healthz`, `/readyz`;
/// 405 for other methods and 413 for bodies (both closing the connection), 404 otherwise.
/// Keeps the connection alive when the client asks to (HTTP/1.1's default).
final class MetricsRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  /// The Prometheus text format's content type.
  static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

  private let connection: Connection
  private let pages: MetricsPages
  private let budget: HeadBudget
  private var closing = false
  private var unfinishedResponses = 0

  init(connection: Connection, pages: MetricsPages, budget: HeadBudget) {
    self.connection = connection
    self.pages = pages
    self.budget = budget
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard case .head(let head) = Self.unwrapInboundIn(data), !closing else { return }
    connection.enter(.answering)
    unfinishedResponses += 1
    guard unfinishedResponses <= connection.limits.maximumPendingResponses else {
      connection.refuse(.unreadResponse)
      closing = true
      context.close(promise: nil)
      return
    }
    // Answered in a task of its own: the pipelining handler hands over the next buffered
    // request while this answer is written, and answering at once would nest one call per
    // pipelined request.
    context.eventLoop.assumeIsolated().execute { [self] in
      guard !closing else { return }
      answer(context, head)
    }
  }

  private func answer(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
    switch head.refusal {
    case .methodNotAllowed?:
      connection.refuse(.methodNotAllowed)
      return respond(
        context, to: head, .methodNotAllowed, text: "only GET and HEAD are served\n",
        extraHeaders: [("Allow", "GET, HEAD")], close: true)
    case .some:
      connection.refuse(.bodyRefused)
      return respond(
        context, to: head, .payloadTooLarge, text: "request bodies are refused\n", close: true)
    case nil: break
    }
    let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
    switch path {
    case "/metrics", "/":
      respond(context, to: head, .ok, body: pages.metrics(), contentType: Self.metricsContentType)
    case "/healthz":
      respond(context, to: head, .ok, text: "ok\n")
    case "/readyz":
      let answer = pages.readiness()
      respond(
        context, to: head, answer.ready ? .ok : .serviceUnavailable, text: answer.detail + "\n")
    default:
      respond(context, to: head, .notFound, text: "not found; try /metrics, /healthz or /readyz\n")
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // HTTPServerProtocolErrorHandler has answered a parse error with 400 already.
    if error is HTTPParserError && !budget.refused && !closing { connection.refuse(.malformed) }
    closing = true
    context.close(promise: nil)
  }

  private func respond(
    _ context: ChannelHandlerContext, to request: HTTPRequestHead, _ status: HTTPResponseStatus,
    text: String, extraHeaders: [(String, String)] = [], close: Bool = false
  ) {
    respond(
      context, to: request, status, body: Array(text.utf8),
      contentType: "text/plain; charset=utf-8", extraHeaders: extraHeaders, close: close)
  }

  /// Writes one whole response with its `Content-Length` (a HEAD response has the headers
  /// a GET would get, without the body).
  private func respond(
    _ context: ChannelHandlerContext, to request: HTTPRequestHead, _ status: HTTPResponseStatus,
    body: [UInt8], contentType: String, extraHeaders: [(String, String)] = [], close: Bool = false
  ) {
    let keepAlive = !close && request.isKeepAlive
    var headers = HTTPHeaders([
      ("Content-Type", contentType), ("Content-Length", String(body.count)),
      ("Connection", keepAlive ? "keep-alive" : "close"),
    ])
    headers.add(contentsOf: extraHeaders)
    context.write(
      Self.wrapOutboundOut(
        .head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
      promise: nil)
    if request.method != .HEAD {
      context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
    }
    if !keepAlive { closing = true }
    context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete {
      [self] _ in
      unfinishedResponses -= 1
      if !keepAlive {
        context.close(promise: nil)
      } else if unfinishedResponses == 0 {
        connection.enter(.idle)
      }
    }
  }
}
