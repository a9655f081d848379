import Foundation
import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// The checkpointer with a real store whose directory disappears and comes
/// back (a write then fails with ENOENT, as it would with ENOSPC), clocked by hand.
@Suite struct CheckpointerTests {
  /// What a checkpointer said, by kind.
  final class Said {
    var routine: [String] = []
    var warnings: [String] = []
    var notices: [String] = []
  }

  func directory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-checkpointer-\(UUID().uuidString)"
    ).path
  }

  /// An async server with worker 0 joined.
  func joinedServer() -> ParameterServer {
    let server = makeServer(.async)
    _ = server.receive(join(0, of: 1), from: peerA, now: 0)
    return server
  }

  /// Pushes until `server` is at `version`.
  func advance(_ server: ParameterServer, to version: UInt64) {
    while server.version < version {
      _ = server.receive(
        push(0, server.version + 1, at: server.version, [0.001, 0.002, 0.003]), from: peerA,
        now: 0)
    }
  }

  func checkpointer(
    _ server: ParameterServer, in path: String, every: UInt64, required: Bool = false,
    resumedFrom: String? = nil, now: UInt64 = 0
  ) throws -> (Checkpointer, Said) {
    let said = Said()
    let checkpointer = Checkpointer(
      store: try CheckpointStore(directory: path), every: every, required: required,
      server: server, resumedFrom: resumedFrom, now: now, log: { said.routine.append($0) },
      warn: { said.warnings.append($0) }, notice: { said.notices.append($0) })
    return (checkpointer, said)
  }

  func removeDirectory(_ path: String) throws {
    try FileManager.default.removeItem(atPath: path)
  }

  @Test func aFailureIsSaidOnceShownInStatusAndRetriedLessOften() throws {
    let path = directory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let server = joinedServer()
    let (checkpointer, said) = try checkpointer(server, in: path, every: 2)
    #expect(server.status.checkpoints == CheckpointHealth(durableVersion: nil))
    advance(server, to: 2)
    #expect(checkpointer.writeIfDue(server, now: 1000))
    #expect(server.status.checkpoints?.durableVersion == 2)
    #expect(said.routine.count == 1 && said.warnings.isEmpty)

    try removeDirectory(path)
    var attempts: [UInt64] = []
    for version: UInt64 in 3...9 {
      advance(server, to: version)
      let failuresBefore = checkpointer.schedule.failures
      #expect(checkpointer.writeIfDue(server, now: 1000 + version))
      if checkpointer.schedule.failures > failuresBefore { attempts.append(version) }
    }
    // The next boundary, then twice as far.
    #expect(attempts == [4, 6])
    #expect(said.warnings.count == 1)
    #expect(said.warnings.first?.contains("checkpoint at version 4 failed") == true)
    #expect(said.warnings.first?.contains("No such file or directory") == true)
    let failing = try #require(server.status.checkpoints)
    #expect(failing.durableVersion == 2)
    #expect(failing.consecutiveFailures == 2)
    #expect(failing.lastError.contains("No such file or directory"))

    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    advance(server, to: 10)
    #expect(checkpointer.writeIfDue(server, now: 2000))
    #expect(said.notices.count == 1)
    #expect(said.notices.first?.hasPrefix("checkpoints work again: version 10 is durable") == true)
    let working = try #require(server.status.checkpoints)
    #expect(working.durableVersion == 10 && working.consecutiveFailures == 0)
    #expect(working.failures == 2)
    #expect(try CheckpointStore(directory: path).latest()?.checkpoint.version == 10)
    #expect(said.warnings.count == 1)
  }

  @Test func aRequiredCheckpointThatFailsStopsTheLoopAndWritesNoFinalOne() throws {
    let path = directory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let server = joinedServer()
    let (checkpointer, said) = try checkpointer(server, in: path, every: 2, required: true)
    advance(server, to: 2)
    #expect(checkpointer.writeIfDue(server, now: 0))
    try removeDirectory(path)
    advance(server, to: 4)
    #expect(!checkpointer.writeIfDue(server, now: 0))
    let reason = try #require(checkpointer.stopReason)
    #expect(reason.contains("checkpoint at version 4 failed"))
    #expect(reason.contains("--checkpoint-required"))
    #expect(reason.contains("newest durable checkpoint is version 2"))
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    checkpointer.writeFinal(server)
    #expect(try CheckpointStore(directory: path).files().isEmpty)
    #expect(said.warnings.isEmpty)
  }

  @Test func aFinalCheckpointThatFailsIsAlwaysSaid() throws {
    let path = directory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let server = joinedServer()
    let (checkpointer, said) = try checkpointer(server, in: path, every: 100)
    advance(server, to: 1)
    try removeDirectory(path)
    checkpointer.writeFinal(server)
    #expect(said.warnings.count == 1)
    #expect(said.warnings.first?.hasPrefix("final checkpoint at version 1 failed") == true)
    #expect(
      said.warnings.first?.hasSuffix(
        "no checkpoint of this run is durable yet: the updates after it are lost") == true)
  }

  /// A server that applied nothing writes nothing on stop (as before).
  @Test func aServerThatAppliedNothingWritesNoFinalCheckpoint() throws {
    let path = directory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let server = joinedServer()
    let (checkpointer, said) = try checkpointer(server, in: path, every: 2)
    checkpointer.writeFinal(server)
    #expect(try CheckpointStore(directory: path).files().isEmpty)
    advance(server, to: 1)
    checkpointer.writeFinal(server)
    #expect(try CheckpointStore(directory: path).latest()?.checkpoint.version == 1)
    #expect(said.routine.count == 1)
  }

  /// A resumed server counts the file it resumed from as durable, as old as the file.
  @Test func aResumedCheckpointIsDurableWithTheFilesAge() throws {
    let path = directory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    let server = joinedServer()
    advance(server, to: 3)
    let file = try CheckpointStore(directory: path).write(server.checkpoint)
    var times = [
      timeval(tv_sec: time(nil) - 90, tv_usec: 0), timeval(tv_sec: time(nil) - 90, tv_usec: 0),
    ]
    #expect(utimes(file, &times) == 0)
    let (checkpointer, said) = try checkpointer(
      server, in: path, every: 2, resumedFrom: file, now: 1_000_000)
    let health = try #require(server.status.checkpoints)
    #expect(health.durableVersion == 3)
    #expect((89_000...95_000).contains(health.durableAgeMilliseconds))
    // Nothing new to write on stop.
    checkpointer.writeFinal(server)
    #expect(said.routine.isEmpty)
  }
}
