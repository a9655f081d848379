import Foundation
import Testing
import TrainingMath
import WireProtocol

@testable import Roles

@Suite struct CheckpointStoreTests {
  func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-checkpoints-\(UUID().uuidString)"
    ).path
    return path
  }

  func checkpoint(version: UInt64) -> ServerCheckpoint {
    let server = makeServer(.async)
    var state = server.checkpoint
    state.version = version
    return state
  }

  @Test func writesAtomicallyKeepsTheNewestAndReadsTheLatest() throws {
    let directory = temporaryDirectory()
    let store = try CheckpointStore(directory: directory, keep: 3)
    #expect(try store.latest() == nil)
    for version in [5, 10, 15, 20, 100] as [UInt64] {
      try store.write(checkpoint(version: version))
    }
    #expect(store.files().count == 3)
    let latest = try #require(try store.latest())
    #expect(latest.checkpoint.version == 100)
    #expect(latest.path.hasSuffix("checkpoint-00000000000000000100.pstckpt"))
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter {
      $0.hasPrefix(".tmp")
    }
    #expect(leftovers.isEmpty)
  }

  @Test func aCorruptNewestCheckpointIsRefusedNamingTheIntactOne() throws {
    let directory = temporaryDirectory()
    let store = try CheckpointStore(directory: directory)
    try store.write(checkpoint(version: 1))
    let newest = try store.write(checkpoint(version: 2))
    var bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
    bytes.removeLast(3)
    try bytes.write(to: URL(fileURLWithPath: newest))
    do {
      _ = try store.latest()
      Issue.record("a truncated checkpoint was accepted")
    } catch {
      #expect(
        error.description.contains("checksum mismatch") || error.description.contains("malformed"))
      #expect(error.description.contains("checkpoint-00000000000000000001.pstckpt is intact"))
    }
    // The intact older file is untouched and readable.
    #expect(
      try CheckpointStore.read(directory + "/checkpoint-00000000000000000001.pstckpt").version == 1)
  }
}
