import Synchronization
import Testing

@testable import ZeroMQ

@Suite(.serialized) struct CurveTests {
  func keys() throws -> (public: [UInt8], secret: [UInt8]) {
    let pair = try Curve.keyPair()
    return (try #require(Curve.decode(pair.publicKey)), try #require(Curve.decode(pair.secretKey)))
  }

  /// Connects a DEALER with `client` keys (or none) and says whether a request gets an answer.
  func roundTrip(
    _ context: Context, _ endpoint: String, server: [UInt8],
    client: (public: [UInt8], secret: [UInt8])?
  ) throws -> Bool {
    let dealer = try Socket(context, kind: .dealer)
    try dealer.set(.linger(milliseconds: 0))
    if let client {
      try dealer.set([
        .curveServerKey(server), .curvePublicKey(client.public), .curveSecretKey(client.secret),
      ])
    }
    try dealer.connect(endpoint)
    try dealer.send(Message(string: "hello"))
    return try dealer.waitForInput(timeoutMilliseconds: 1500)
  }

  @Test func onlyAuthorizedKeysGetThroughAndRefusalsAreSeen() throws {
    #expect(Curve.isAvailable)
    let context = try Context()
    let server = try keys()
    let allowed = try keys()
    let stranger = try keys()
    let asked = Mutex<[String]>([])
    let zap = try ZAPHandler(context: context) { request in
      asked.withLock { $0.append(request.mechanism) }
      return request.mechanism == "CURVE" && request.credentials == allowed.public
    }
    defer { zap.stop() }
    let router = try Socket(context, kind: .router)
    try router.set([
      .heartbeatInterval(milliseconds: 1000), .heartbeatTimeout(milliseconds: 5000),
      .heartbeatTTL(milliseconds: 5000), .maximumMessageSize(1 << 26), .routerMandatory(true),
      .routerHandover(true),
    ])
    try router.set([
      .linger(milliseconds: 0), .curveServer(true), .curveSecretKey(server.secret),
      .zapDomain("test"),
    ])
    try router.bind("tcp://127.0.0.1:*")
    let endpoint = try router.lastEndpoint()
    // An echo loop on this thread would block; answer inline after each send instead.
    func answerOne() throws -> Bool {
      guard try router.waitForInput(timeoutMilliseconds: 1500),
        let request = try router.receiveMultipart(.dontWait)
      else { return false }
      try router.send(multipart: [Message(bytes: request.frames[0].bytes), Message(string: "hi")])
      return true
    }
    let dealer = try Socket(context, kind: .dealer)
    try dealer.set([
      .linger(milliseconds: 0), .curveServerKey(server.public), .curvePublicKey(allowed.public),
      .curveSecretKey(allowed.secret),
    ])
    try dealer.connect(endpoint)
    try dealer.send(Message(string: "hello"))
    #expect(try answerOne())
    #expect(try dealer.waitForInput(timeoutMilliseconds: 5000))

    #expect(try roundTrip(context, endpoint, server: server.public, client: stranger) == false)
    #expect(try roundTrip(context, endpoint, server: server.public, client: nil) == false)
    #expect(try router.waitForInput(timeoutMilliseconds: 200) == false)
    #expect(asked.withLock { $0 }.contains("CURVE"))
  }

  @Test func z85RoundTripsAndRejectsGarbage() throws {
    let pair = try Curve.keyPair()
    let bytes = try #require(Curve.decode(pair.publicKey))
    #expect(Curve.encode(bytes) == pair.publicKey)
    #expect(try Curve.publicKey(forSecretKey: pair.secretKey) == pair.publicKey)
    #expect(Curve.decode("short") == nil)
  }
}
