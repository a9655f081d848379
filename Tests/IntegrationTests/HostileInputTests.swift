import Foundation
import Testing
import TrainingMath
import WireProtocol
import ZeroMQ

/// Hostile bytes from a raw ZeroMQ client against a real server process.
@Suite(.serialized) struct HostileInputTests {
  func reply(_ socket: Socket) throws -> [UInt8] {
    #expect(try socket.waitForInput(timeoutMilliseconds: 10_000))
    return try #require(try socket.receive()).bytes
  }

  @Test func malformedFramesGetErrorRepliesAndChangeNothing() throws {
    let (server, endpoint) = try startServer()
    defer { server.stop() }
    let context = try Context()
    let socket = try Socket(context, kind: .dealer)
    try socket.set(.linger(milliseconds: 100))
    try socket.connect(endpoint)

    var nanPush = WireCodec.encode(
      .push(
        GradientPush(
          workerID: 0, sequence: 1, computedAtVersion: 0,
          samples: [Sample(index: 0, x: 1, label: -1)],
          gradient: NamedTensors(layout: [TensorSpec(name: "w", count: 3)], values: [1, 2, 3]))))
    let one = withUnsafeBytes(of: 2.0.bitPattern.littleEndian) { Array($0) }
    let nan = withUnsafeBytes(of: Double.nan.bitPattern.littleEndian) { Array($0) }
    let at = try #require((0...(nanPush.count - 8)).first { Array(nanPush[$0..<($0 + 8)]) == one })
    nanPush.replaceSubrange(at..<(at + 8), with: nan)

    let hostile: [[UInt8]] = [
      [],
      Array("GET / HTTP/1.1\r\n\r\n".utf8),
      [0x50, 0x53, 9, 1],
      [0x50, 0x53, 1, 200],
      Array(WireCodec.encode(.statusRequest)) + [0],
      nanPush,
      WireCodec.encode(.leave(workerID: 4)),
    ]
    for bytes in hostile {
      try socket.send(Message(bytes: bytes))
      let answer = try WireCodec.decode(try reply(socket))
      guard case .error = answer else {
        Issue.record("expected an error reply to \(bytes.prefix(8)), got \(answer.type)")
        continue
      }
    }
    // Two frames in one message are refused as well.
    try socket.send(multipart: [Message(bytes: [1]), Message(bytes: [2])])
    guard case .error(let twoFrames) = try WireCodec.decode(try reply(socket)) else {
      Issue.record("no error for a two-frame message")
      return
    }
    #expect(twoFrames.message.contains("one frame"))

    try socket.send(Message(bytes: WireCodec.encode(.statusRequest)))
    guard case .status(let status) = try WireCodec.decode(try reply(socket)) else {
      Issue.record("no status")
      return
    }
    #expect(status.version == 0)
    #expect(status.parameters.values == ChainModel.seedWeights)
    #expect(status.rejected == UInt64(hostile.count) + 1)
    #expect(server.process.isRunning)
    #expect(try server.terminate() == 0)
  }
}
