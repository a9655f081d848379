import Foundation
import Testing

/// The metrics port against hostile clients, the Kubernetes probes, and promtool.
extension MetricsTests {
  /// `GET url` with curl (at most 10 s): the status (0 when nothing came) and the body.
  func get(_ url: String) throws -> (status: Int, body: String) {
    let text = try runTool(
      "/usr/bin/curl", ["-s", "--max-time", "10", "-w", "\n%{http_code}", url], seconds: 30
    ).output
    guard let newline = text.lastIndex(of: "\n"),
      let status = Int(text[text.index(after: newline)...])
    else { throw HarnessError("curl \(url) printed \(text.suffix(200))") }
    return (status, String(text[..<newline]))
  }

  /// `http://HOST:PORT` of a process's metrics endpoint.
  func baseURL(_ launched: Launched) throws -> String {
    String(try metricsURL(launched).dropLast("/metrics".count))
  }

  /// A server on loopback, a worker training on `data` and a coordinator auditing every 50
  /// versions, each serving metrics on a free port.
  func startRolesWithMetrics(data: String) throws -> (
    server: Launched, worker: Launched, coordinator: Launched
  ) {
    let (server, endpoint) = try startServer(["--metrics", "127.0.0.1:0"])
    do {
      let worker = try Launched([
        "worker", "--connect", endpoint, "--shard", "0/1", "--data", data, "--epochs", "1000000",
        "--metrics", "127.0.0.1:0",
      ])
      do {
        let coordinator = try Launched([
          "coordinator", "--connect", endpoint, "--every", "50", "--data", data, "--metrics",
          "127.0.0.1:0",
        ])
        return (server, worker, coordinator)
      } catch {
        worker.stop()
        throw error
      }
    } catch {
      server.stop()
      throw error
    }
  }

  /// One kept-alive connection: GET gets the Prometheus content type and an exact
  /// Content-Length, HEAD the same head without the body, another method 405 with `Allow`
  /// and the connection closed.
  @Test func keepAliveHeadAndMethodNotAllowed() throws {
    let (server, _) = try startServer(["--metrics", "127.0.0.1:0"])
    defer { server.stop() }
    let port = try #require(Int(try baseURL(server).split(separator: ":").last ?? ""))
    let client = try RawConnection(port: port)
    client.send("GET /metrics HTTP/1.1\r\nHost: pstrain\r\n\r\n")
    let get = client.receiveResponse()
    #expect(get.head.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(get.head)")
    #expect(get.head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
    #expect(get.head.contains("Content-Length: \(get.body.count)\r\n"), "\(get.head)")
    #expect(String(decoding: get.body, as: UTF8.self).contains("# TYPE pstrain_version gauge"))
    #expect(!get.closed)
    client.send("HEAD /metrics HTTP/1.1\r\nHost: pstrain\r\n\r\n")
    let head = client.receiveResponse(hasBody: false)
    #expect(head.head.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(head.head)")
    #expect(head.head.contains("Content-Length: \(get.body.count)\r\n"), "\(head.head)")
    #expect(head.body.isEmpty && !head.closed)
    client.send("DELETE /metrics HTTP/1.1\r\nHost: pstrain\r\n\r\n")
    let refused = client.receiveResponse()
    #expect(refused.head.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"), "\(refused.head)")
    #expect(refused.head.contains("Allow: GET, HEAD\r\n"))
    #expect(client.receive(within: 10) { _ in false }.closed, "the connection stays open after 405")
  }

  /// Random bytes, oversized request lines and headers, bodies, hundreds of half-open
  /// connections held open, a client trickling a byte at a time and clients that read nothing,
  /// all at once on a training server's metrics port: every scrape during and after is
  /// answered with live values, each kind of refusal is logged once, and training goes on.
  /// (The hand-written endpoint this replaced answered nothing after the first few.)
  @Test func hostileClientsNeverStopTheScrapes() throws {
    let data = try generateData(rows: 100, seed: 2, noise: 0.3)
    let (server, endpoint) = try startServer(["--metrics", "127.0.0.1:0"])
    defer { server.stop() }
    let worker = try Launched([
      "worker", "--connect", endpoint, "--shard", "0/1", "--data", data, "--epochs", "1000000",
    ])
    defer { worker.stop() }
    let url = try metricsURL(server)
    let port = try #require(Int(try baseURL(server).split(separator: ":").last ?? ""))
    func applied() throws -> Double {
      let answer = try get(url)
      try #require(
        answer.status == 200, "a scrape got \(answer.status): \(answer.body.suffix(300))")
      return try #require(
        value(answer.body, "pstrain_gradients_applied_total"), "\(answer.body.suffix(300))")
    }
    try waitFor("gradients", within: 30) { try applied() > 0 }

    var clients: [RawConnection] = []
    func open(_ count: Int, receiveBuffer: Int32? = nil, sending request: () -> [UInt8]) throws {
      for _ in 0..<count {
        let client = try RawConnection(port: port, receiveBuffer: receiveBuffer)
        client.send(request())
        clients.append(client)
      }
    }
    func attack() throws {
      try open(10) { (0..<4096).map { _ in UInt8.random(in: 0...255) } }
      try open(5) {
        Array(("GET /" + String(repeating: "a", count: 100_000) + " HTTP/1.1\r\n").utf8)
      }
      try open(5) {
        Array(
          ("GET /metrics HTTP/1.1\r\nX-Padding: " + String(repeating: "b", count: 100_000) + "\r\n")
            .utf8)
      }
      try open(5) {
        Array("POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n".utf8)
          + [UInt8](repeating: 65, count: 60_000)
      }
      try open(5) {
        Array("GET /metrics HTTP/1.1\r\nContent-Length: 50000\r\n\r\n".utf8)
          + [UInt8](repeating: 66, count: 50_000)
      }
      // Pipelined scrapes whose answers are never read (megabytes of answers).
      try open(3, receiveBuffer: 4096) {
        Array(repeating: Array("GET /metrics HTTP/1.1\r\n\r\n".utf8), count: 5000).flatMap { $0 }
      }
    }
    try open(300) { Array("GET /metr".utf8) }  // half-open: a request begun, never finished
    let trickle = try RawConnection(port: port)
    var during: [Double] = []
    for _ in 0..<6 {
      try attack()
      trickle.send("G")
      during.append(try applied())
      usleep(500_000)
    }
    #expect(during.last! > during.first!, "scrapes during the attack showed \(during)")
    // The training port answers, and its count is at least what the last scrape showed.
    let trained = try #require(
      (try serverStatus(endpoint)["gradients_applied"] as? NSNumber)?.doubleValue)
    #expect(trained >= during.last!)
    try waitFor("the slow clients and those that read nothing to be refused", within: 30) {
      server.output.contains("no complete request head")
        && server.output.contains("do not read their responses")
    }
    clients.removeAll()
    let after = try applied()
    try waitFor("more gradients after the attack", within: 30) { try applied() > after }
    for refusal in [
      "a request line and headers over 8192 bytes", "a method other than GET or HEAD",
      "a request body", "malformed HTTP", "more than 64 connections", "no complete request head",
      "do not read their responses",
    ] {
      let said = server.output.components(separatedBy: refusal).count - 1
      #expect(said == 1, "\"\(refusal)\" logged \(said) times: \(server.output.suffix(2000))")
    }
    withExtendedLifetime(trickle) {}
  }

  /// `/healthz` and `/readyz` of real processes: a worker whose server never answers is alive
  /// but not ready; the server, a worker and the coordinator at work are ready; the
  /// coordinator turns not ready once its subscription lapses with the server gone.
  @Test func probesFollowEachRolesState() throws {
    let data = try generateData(rows: 100, seed: 2, noise: 0.3)
    let lonely = try Launched([
      "worker", "--connect", "tcp://127.0.0.1:1", "--timeout-ms", "60000", "--shard", "0/1",
      "--data", data, "--metrics", "127.0.0.1:0",
    ])
    defer { lonely.stop() }
    let lonelyURL = try baseURL(lonely)
    #expect(try get(lonelyURL + "/healthz").status == 200)
    let waiting = try get(lonelyURL + "/readyz")
    #expect(waiting.status == 503)
    #expect(waiting.body.contains("waiting for a reply from the server"), "\(waiting.body)")
    lonely.stop()

    let (server, worker, coordinator) = try startRolesWithMetrics(data: data)
    defer { [server, worker, coordinator].forEach { $0.stop() } }
    let roles = [server, worker, coordinator]
    let urls = try roles.map(baseURL)
    try waitFor("every role to be ready", within: 30) {
      try urls.allSatisfy { try get($0 + "/readyz").status == 200 }
    }
    for url in urls { #expect(try get(url + "/healthz") == (200, "ok\n")) }
    server.stop()
    try waitFor("the coordinator's subscription to lapse", within: 30) {
      try get(urls[2] + "/readyz").status == 503
    }
    let lapsed = try get(urls[2] + "/readyz").body
    #expect(lapsed.contains("since a confirmation of the audit subscription"), "\(lapsed)")
    #expect(try get(urls[2] + "/healthz").status == 200)
  }
}
