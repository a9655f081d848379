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

  /// A raw DEALER connected to `endpoint` (keep the context while it is used).
  func dealer(to endpoint: String) throws -> (Context, Socket) {
    let context = try Context()
    let socket = try Socket(context, kind: .dealer)
    try socket.set(.linger(milliseconds: 100))
    try socket.connect(endpoint)
    return (context, socket)
  }

  @Test func malformedFramesGetErrorRepliesAndChangeNothing() throws {
    let (server, endpoint) = try startServer()
    defer { server.stop() }
    let (context, socket) = try dealer(to: endpoint)
    defer { withExtendedLifetime(context) {} }

    var nanPush = WireCodec.encode(
      .push(
        GradientPush(
          workerID: 0, sequence: 1, computedAtVersion: 0,
          rows: [0],
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
    // A message may span frames only with tensor values in frames of their own.
    let push = GradientPush(
      workerID: 0, sequence: 1, computedAtVersion: 0,
      rows: [0],
      gradient: NamedTensors(layout: [TensorSpec(name: "w", count: 3)], values: [1, 2, 3]))
    let split = WireCodec.encodeFrames(.push(push), threshold: 8)
    #expect(split.count == 2 && split[1].count == 24)  // the values, a frame of their own
    let request = WireCodec.encode(.statusRequest)
    let badlyCut: [(frames: [[UInt8]], reason: String)] = [
      ([Array(request[0..<2]), Array(request[2...])], "protocol version needs 1 bytes, 0 left"),
      ([request, [7]], "1 more than the message holds"),
      ([split[0], Array(split[1].prefix(16)), Array(split[1].suffix(8))], "a values frame of 16"),
      ([split[0] + split[1].prefix(8), Array(split[1].suffix(16))], "needs 24 bytes, 8 left"),
      ([split[0], split[1], []], "an empty frame after a values frame"),
      (
        [request] + [[UInt8]](repeating: [1], count: WireCodec.maximumFrames),
        "more than \(WireCodec.maximumFrames) in one message"
      ),
    ]
    for (frames, reason) in badlyCut {
      try socket.send(multipart: frames.map { Message(bytes: $0) })
      guard case .error(let refusal) = try WireCodec.decode(try reply(socket)) else {
        Issue.record("no error for frames cut as \(frames.map(\.count))")
        continue
      }
      #expect(refusal.code == .malformed)
      #expect(refusal.message.contains(reason), "\(refusal.message)")
    }
    // Cut where the protocol allows, the push decodes: this worker has not joined.
    try socket.send(multipart: split.map { Message(bytes: $0) })
    guard case .error(let notJoined) = try WireCodec.decode(try reply(socket)) else {
      Issue.record("no answer to a push in two frames")
      return
    }
    #expect(notJoined.code == .notJoined)

    try socket.send(Message(bytes: WireCodec.encode(.statusRequest)))
    guard case .status(let status) = try WireCodec.decode(try reply(socket)) else {
      Issue.record("no status")
      return
    }
    #expect(status.version == 0)
    #expect(status.parameters.values == ChainModel.seedWeights)
    #expect(status.rejected == UInt64(hostile.count + badlyCut.count) + 1)
    #expect(server.process.isRunning)
    #expect(try server.terminate() == 0)
  }
}

/// CURVE with ZAP against raw ZeroMQ clients: without an authorized key nothing gets in.
@Suite(.serialized) struct EncryptedServerTests {
  func keys(_ folder: String, _ name: String) throws -> String {
    let run = try runPstrain(["keygen", "--out", folder, "--name", name])
    #expect(run.status == 0, "\(run.errors)")
    return folder + "/" + name
  }

  func z85Key(_ path: String, _ field: String) throws -> [UInt8] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(field) })
    let value = line.split(separator: "=", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
    return try #require(Curve.decode(value))
  }

  /// A raw DEALER (not pstrain's client) that joins and pushes; returns whether anything came back.
  func rawClientGetsAnswer(_ endpoint: String, serverKey: [UInt8], keyFile: String?) throws -> Bool
  {
    let context = try Context()
    let socket = try Socket(context, kind: .dealer)
    try socket.set(.linger(milliseconds: 0))
    if let keyFile {
      try socket.set([
        .curveServerKey(serverKey), .curvePublicKey(try z85Key(keyFile, "public-key")),
        .curveSecretKey(try z85Key(keyFile, "secret-key")),
      ])
    }
    try socket.connect(endpoint)
    let join = WireMessage.join(
      Join(
        workerID: 0, shard: try Shard(index: 0, count: 1),
        model: ModelDescriptor(name: "chain", layout: [TensorSpec(name: "w", count: 3)]),
        dataset: DatasetIdentity(rows: 2, fingerprint: Dataset.seed.fingerprint)))
    let push = WireMessage.push(
      GradientPush(
        workerID: 0, sequence: 1, computedAtVersion: 0,
        rows: [0],
        gradient: NamedTensors(layout: [TensorSpec(name: "w", count: 3)], values: [1, 1, 1])))
    try socket.send(Message(bytes: WireCodec.encode(join)))
    try socket.send(Message(bytes: WireCodec.encode(push)))
    return try socket.waitForInput(timeoutMilliseconds: 1500)
  }

  @Test func clientsWithoutAnAuthorizedKeyPushNothing() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-curve-\(UUID().uuidString)"
    ).path
    let server = try keys(folder + "/server", "server")
    let client = try keys(folder + "/clients", "client")
    let rogue = try keys(folder + "/rogue", "rogue")
    let (process, endpoint) = try startServer([
      "--curve-secret-key", server + ".key", "--authorized-keys", folder + "/clients",
    ])
    defer { process.stop() }
    let serverKey = try z85Key(server + ".pub", "public-key")
    #expect(try rawClientGetsAnswer(endpoint, serverKey: serverKey, keyFile: nil) == false)
    #expect(
      try rawClientGetsAnswer(endpoint, serverKey: serverKey, keyFile: rogue + ".key") == false)
    let authorized = [
      "--curve-secret-key", client + ".key", "--server-key", server + ".pub",
    ]
    let before = try runPstrain(
      ["status", "--connect", endpoint, "--json"] + authorized, within: 30)
    #expect(before.status == 0, "\(before.errors)")
    #expect(try lastJSONObject(before.output)["version"] as? Int == 0)
    #expect(try lastJSONObject(before.output)["rejected"] as? Int == 0)
    // The same raw client with an authorized key gets in, and its push counts.
    #expect(try rawClientGetsAnswer(endpoint, serverKey: serverKey, keyFile: client + ".key"))
    let after = try runPstrain(
      ["status", "--connect", endpoint, "--json"] + authorized, within: 30)
    #expect(try lastJSONObject(after.output)["version"] as? Int == 1)
    // pstrain's own client without keys gets nothing either.
    let plainStatus = try runPstrain(
      ["status", "--connect", endpoint, "--timeout-ms", "500"], within: 30)
    #expect(plainStatus.status == 2)
    #expect(try process.terminate() == 0)
    #expect(process.output.contains("refused a CURVE connection"))
    #expect(
      !process.output.contains(
        try String(contentsOfFile: rogue + ".key", encoding: .utf8).split(separator: "\n")[1].split(
          separator: " "
        ).last!))
  }
}

extension HostileInputTests {
  /// Hostile `evaluation` frames: refused with the field named, and the evaluation
  /// `status` shows stays the last good one.
  @Test func aNaNLossOrAnAccuracyOfTwoIsRefusedByName() throws {
    let (server, endpoint) = try startServer()
    defer { server.stop() }
    let (context, socket) = try dealer(to: endpoint)
    defer { withExtendedLifetime(context) {} }
    let good = EvaluationReport(version: 0, rows: 60, loss: 0.375, accuracy: 0.5)
    try socket.send(Message(bytes: WireCodec.encode(.evaluation(good))))
    func patched(_ value: Double, with replacement: Double) throws -> [UInt8] {
      var bytes = WireCodec.encode(.evaluation(good))
      let old = withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
      let at = try #require((0...(bytes.count - 8)).first { Array(bytes[$0..<($0 + 8)]) == old })
      bytes.replaceSubrange(
        at..<(at + 8), with: withUnsafeBytes(of: replacement.bitPattern.littleEndian) { Array($0) })
      return bytes
    }
    for (bytes, field) in [
      (try patched(0.375, with: .nan), "evaluation loss"),
      (try patched(0.5, with: 2), "evaluation accuracy"),
    ] {
      try socket.send(Message(bytes: bytes))
      let answer = try WireCodec.decode(try reply(socket))
      guard case .error(let refusal) = answer else {
        Issue.record("expected a refusal naming \(field), got \(answer.type)")
        continue
      }
      #expect(refusal.message.hasPrefix(field), "\(refusal.message)")
    }
    let status = try serverStatus(endpoint)
    let shown = try #require(status["last_evaluation"] as? [String: Any])
    #expect(shown["test_loss"] as? Double == 0.375)
    #expect(shown["test_accuracy"] as? Double == 0.5)
  }
}
