import Foundation
import Testing
import TrainingMath
import WireProtocol
import ZeroMQ

@testable import Roles

@Suite(.serialized) struct SecurityTests {
  func directory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-keys-\(UUID().uuidString)"
    ).path
  }

  @Test func keyFilesRoundTripAndSecretFilesMustBePrivate() throws {
    let folder = directory()
    let paths = try CurveKeyFiles.generate(directory: folder, name: "node")
    let pair = try CurveKeyFiles.readKeyPair(paths.secret)
    #expect(try CurveKeyFiles.readPublicKey(paths.public) == pair.publicKey)
    #expect(pair.secretKey.count == 32)
    #expect(throws: RoleError.self) { try CurveKeyFiles.generate(directory: folder, name: "node") }
    chmod(paths.secret, 0o644)
    do {
      _ = try CurveKeyFiles.readKeyPair(paths.secret)
      Issue.record("a world-readable secret key was accepted")
    } catch {
      #expect(error.description.contains("chmod 600"))
      let secretText = try String(contentsOfFile: paths.secret, encoding: .utf8)
      let secretLine = secretText.split(separator: "\n").first { $0.hasPrefix("secret-key") }!
      #expect(
        !error.description.contains(
          secretLine.split(separator: "=", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)))
    }
  }

  @Test func anEncryptedServerAnswersAuthorizedClientsOnly() throws {
    let folder = directory()
    let server = try CurveKeyFiles.generate(directory: folder + "/server", name: "server")
    let client = try CurveKeyFiles.generate(directory: folder + "/clients", name: "client")
    let rogue = try CurveKeyFiles.generate(directory: folder + "/rogue", name: "rogue")
    let security = ServerSecurity(
      keyPair: try CurveKeyFiles.readKeyPair(server.secret),
      authorizedKeys: try CurveKeyFiles.authorizedKeys(in: folder + "/clients"))
    let context = try Context()
    let stop = StopFlag()
    let bound = Box()
    let ready = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    // The server's socket lives on its own thread, as in the real server.
    Thread.detachNewThread {
      defer { done.signal() }
      guard
        let loop = try? ServerLoop(
          server: makeServer(.async), context: context, endpoint: "tcp://127.0.0.1:*",
          security: security)
      else {
        ready.signal()
        return
      }
      bound.set(loop.boundEndpoint)
      ready.signal()
      try? loop.run(shouldStop: { stop.isSet })
    }
    ready.wait()
    defer {
      stop.set()
      done.wait()
    }
    let endpoint = try #require(bound.value)
    func status(_ key: String?) throws -> ServerStatus? {
      let connection = try ServerConnection(
        context: context, endpoint: endpoint,
        security: try key.map {
          ClientSecurity(
            keyPair: try CurveKeyFiles.readKeyPair($0),
            serverKey: try CurveKeyFiles.readPublicKey(server.public))
        })
      return try? connection.status(timeoutMilliseconds: 1500)
    }
    #expect(try status(client.secret)?.version == 0)
    #expect(try status(rogue.secret) == nil)
    #expect(try status(nil) == nil)
  }
}

final class Box: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: String?
  var value: String? { lock.withLock { stored } }
  func set(_ text: String) { lock.withLock { stored = text } }
}

final class StopFlag: @unchecked Sendable {
  private let lock = NSLock()
  private var value = false
  var isSet: Bool { lock.withLock { value } }
  func set() { lock.withLock { value = true } }
}

@Suite struct UnreachableServerTests {
  /// A client of a server that never answers must not block on send, however
  /// long it keeps retrying: messages beyond the queue are dropped instead.
  @Test func sendingToAnUnreachableServerNeverBlocks() throws {
    let finished = DispatchSemaphore(value: 0)
    let failure = Box()
    Thread.detachNewThread {
      defer { finished.signal() }
      do {
        let context = try Context()
        // Port 1 on loopback: nothing listens, the connection never completes.
        let connection = try ServerConnection(context: context, endpoint: "tcp://127.0.0.1:1")
        for _ in 0..<25_000 { try connection.send(.statusRequest) }  // above the 10,000 high-water mark
      } catch {
        failure.set("\(error)")
      }
    }
    #expect(finished.wait(timeout: .now() + 60) == .success)
    #expect(failure.value == nil)
  }
}
