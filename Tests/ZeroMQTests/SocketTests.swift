import Testing

@testable import ZeroMQ

@Suite struct SocketTests {
  @Test func inprocPairCarriesMultipartMessages() throws {
    let context = try Context()
    let a = try Socket(context, kind: .pair)
    let b = try Socket(context, kind: .pair)
    try a.bind("inproc://pair-test")
    try b.connect("inproc://pair-test")
    try a.send(multipart: [Message(string: "one"), Message(bytes: [0, 1, 2]), Message(bytes: [])])
    let received = try #require(try b.receiveMultipart())
    #expect(received.frames.map(\.bytes) == [Array("one".utf8), [0, 1, 2], []])
    #expect(!received.truncated)
  }

  @Test func tcpRouterDealerRoundTripOnAnEphemeralPort() throws {
    let context = try Context()
    let router = try Socket(context, kind: .router)
    try router.set([.linger(milliseconds: 100), .routerMandatory(true)])
    try router.bind("tcp://127.0.0.1:*")
    let endpoint = try router.lastEndpoint()
    #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
    #expect(!endpoint.hasSuffix(":*"))
    let dealer = try Socket(context, kind: .dealer)
    try dealer.set([.linger(milliseconds: 100), .routingID([7, 7])])
    try dealer.connect(endpoint)
    try dealer.send(Message(string: "ping"))
    #expect(try router.waitForInput(timeoutMilliseconds: 5000))
    let request = try #require(try router.receiveMultipart())
    #expect(request.frames.count == 2)
    #expect(request.frames[0].bytes == [7, 7])
    #expect(request.frames[1].bytes == Array("ping".utf8))
    try router.send(multipart: [Message(bytes: [7, 7]), Message(string: "pong")])
    #expect(try dealer.waitForInput(timeoutMilliseconds: 5000))
    #expect(try dealer.receive()?.bytes == Array("pong".utf8))
  }

  @Test func nonBlockingReceiveOnAnEmptySocketReturnsNil() throws {
    let context = try Context()
    let socket = try Socket(context, kind: .pull)
    try socket.bind("inproc://empty")
    #expect(try socket.receive(.dontWait) == nil)
    #expect(try socket.waitForInput(timeoutMilliseconds: 10) == false)
  }

  @Test func receiveTimeoutReturnsNil() throws {
    let context = try Context()
    let socket = try Socket(context, kind: .pull)
    try socket.set(.receiveTimeout(milliseconds: 20))
    try socket.bind("inproc://timeout")
    #expect(try socket.receive() == nil)
  }

  @Test func errorsKeepErrnoAndNameTheCall() throws {
    let context = try Context()
    let first = try Socket(context, kind: .router)
    try first.bind("tcp://127.0.0.1:*")
    let endpoint = try first.lastEndpoint()
    let second = try Socket(context, kind: .router)
    do {
      try second.bind(endpoint)
      Issue.record("binding a used port succeeded")
    } catch {
      #expect(error.code == EADDRINUSE)
      #expect(error.description.contains("zmq_bind(\(endpoint))"))
      #expect(!error.isAgain && !error.isInterrupted && !error.isTerminated)
    }
    #expect(throws: ZMQError.self) { try second.connect("nonsense") }
    #expect(throws: ZMQError.self) { try second.set(.routingID([])) }
  }

  @Test func fourMebibyteFramesArriveIntact() throws {
    let context = try Context()
    let push = try Socket(context, kind: .push)
    let pull = try Socket(context, kind: .pull)
    try pull.bind("tcp://127.0.0.1:*")
    try push.connect(try pull.lastEndpoint())
    let size = 4 << 20
    let frame = Message(count: size) { buffer in
      for index in 0..<size { buffer[index] = UInt8(truncatingIfNeeded: index &* 31) }
    }
    try push.send(frame)
    #expect(try pull.waitForInput(timeoutMilliseconds: 10_000))
    let received = try #require(try pull.receive())
    #expect(received.count == size)
    let intact = received.withUnsafeBytes { bytes in
      (0..<size).allSatisfy { bytes[$0] == UInt8(truncatingIfNeeded: $0 &* 31) }
    }
    #expect(intact)
  }

  /// A frame sent by reference arrives intact, with the frames around it, and
  /// libzmq lets go of its owner once sent; a send that is refused lets go at once.
  @Test func framesSentByReferenceArriveIntactAndReleaseTheirOwner() throws {
    final class Owner {
      let bytes: [UInt8]
      init(_ bytes: [UInt8]) { self.bytes = bytes }
    }
    let context = try Context()
    let push = try Socket(context, kind: .push)
    let pull = try Socket(context, kind: .pull)
    try pull.bind("tcp://127.0.0.1:*")
    try push.connect(try pull.lastEndpoint())
    let size = 1 << 20
    weak var watched: Owner?
    do {
      let owner = Owner((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) })
      watched = owner
      try push.sendFrame(bytes: UnsafeRawBufferPointer(start: nil, count: 0), more: true)
      let sent = owner.bytes.withUnsafeBytes { bytes in
        Result { () throws(ZMQError) in
          try push.sendFrame(referencing: bytes, owner: owner, more: true)
        }
      }
      #expect(try sent.get())
      try push.send(Message(bytes: [9]))
    }
    #expect(try pull.waitForInput(timeoutMilliseconds: 10_000))
    let message = try #require(try pull.receiveMultipart())
    #expect(message.frames.map(\.count) == [0, size, 1])
    #expect(message.frames[1].bytes == (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) })
    var waited = 0
    while watched != nil && waited < 10_000 {
      usleep(1000)
      waited += 1
    }
    #expect(watched == nil, "libzmq still holds the owner after the frame arrived")

    // Nobody to send to: a non-blocking send is refused and the owner let go.
    let lonely = try Socket(context, kind: .push)
    weak var refused: Owner?
    do {
      let owner = Owner([1, 2, 3])
      refused = owner
      let sent = owner.bytes.withUnsafeBytes { bytes in
        Result { () throws(ZMQError) in
          try lonely.sendFrame(referencing: bytes, owner: owner, .dontWait)
        }
      }
      #expect(try sent.get() == false)
    }
    #expect(refused == nil)
  }

  @Test func oversizeMessagesAreRefusedByMaximumMessageSize() throws {
    let context = try Context()
    let pull = try Socket(context, kind: .pull)
    try pull.set(.maximumMessageSize(1000))
    try pull.bind("tcp://127.0.0.1:*")
    let endpoint = try pull.lastEndpoint()
    let big = try Socket(context, kind: .push)
    try big.set(.linger(milliseconds: 0))
    try big.connect(endpoint)
    try big.send(Message(bytes: [UInt8](repeating: 1, count: 5000)))
    #expect(try pull.waitForInput(timeoutMilliseconds: 300) == false)
    // A new connection with a small frame still gets through.
    let small = try Socket(context, kind: .push)
    try small.connect(endpoint)
    try small.send(Message(bytes: [1, 2, 3]))
    #expect(try pull.waitForInput(timeoutMilliseconds: 5000))
    #expect(try pull.receive()?.bytes == [1, 2, 3])
  }

  @Test func libraryVersionIsAtLeast4_3() {
    let version = Context.libraryVersion
    #expect(version.major > 4 || (version.major == 4 && version.minor >= 3))
  }
}

#if canImport(Glibc)
  import Glibc
#endif
