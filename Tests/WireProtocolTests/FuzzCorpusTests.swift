import Foundation
import Testing
import TrainingMath

@testable import WireProtocol

/// The fuzzer's seed corpus (Tests/FuzzCorpus) must stay valid as the protocol
/// evolves: every seed decodes and encodes back to the same bytes.
@Suite struct FuzzCorpusTests {
  static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("FuzzCorpus")

  @Test func everySeedDecodesAndRoundTrips() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path).sorted()
    #expect(names.count >= MessageType.allCases.count + 1)
    for name in names {
      let bytes = Array(try Data(contentsOf: Self.corpus.appendingPathComponent(name)))
      if name == "checkpoint" {
        #expect(CheckpointCodec.encode(try CheckpointCodec.decode(bytes)) == bytes)
      } else if name == "saved-model" {
        #expect(SavedModelCodec.encode(try SavedModelCodec.decode(bytes)) == bytes)
      } else {
        let message = try WireCodec.decode(bytes)
        // `join-2`: a second seed of a type.
        #expect("\(message.type)" == name.split(separator: "-2").first.map(String.init))
        #expect(WireCodec.encode(message) == bytes)
      }
    }
  }

  /// A checkpoint written in format 1 (64-bit sequence windows) still reads, and
  /// is written back in the current format.
  @Test func aFormatOneCheckpointStillReads() throws {
    let path = Self.corpus.deletingLastPathComponent().appendingPathComponent(
      "CheckpointFixtures/format-1")
    let bytes = Array(try Data(contentsOf: path))
    #expect(bytes[4] == 1 && bytes[5] == 0)
    let checkpoint = try CheckpointCodec.decode(bytes)
    #expect(checkpoint.sequences.map(\.workerID) == [1])
    #expect(checkpoint.sequences.map(\.sequence) == [3])
    #expect(checkpoint.version == 3)
    let rewritten = CheckpointCodec.encode(checkpoint)
    #expect(rewritten[4] == UInt8(CheckpointCodec.formatVersion))
    #expect(try CheckpointCodec.decode(rewritten) == checkpoint)
  }

  /// A weight decay is kept in a checkpoint's optimizer settings (a flag bit in
  /// the schedule byte and an f64 after the schedule); without one the bytes are
  /// those of before, and a flagged decay of 0 is refused (one encoding each).
  @Test func aWeightDecayRoundTripsInACheckpoint() throws {
    let bytes = Array(try Data(contentsOf: Self.corpus.appendingPathComponent("checkpoint")))
    var checkpoint = try CheckpointCodec.decode(bytes)
    #expect(checkpoint.optimizer.settings.weightDecay == 0)
    var settings = checkpoint.optimizer.settings
    settings.weightDecay = 1e-4
    let old = checkpoint.optimizer
    checkpoint.optimizer = try Optimizer(
      settings: settings, step: old.step, firstMoment: old.firstMoment,
      secondMoment: old.secondMoment, parameterCount: old.firstMoment.count)
    let decayed = CheckpointCodec.encode(checkpoint)
    #expect(decayed.count == bytes.count + 8)
    let read = try CheckpointCodec.decode(decayed)
    #expect(read.optimizer.settings.weightDecay == 1e-4)
    #expect(read == checkpoint)
  }

  static let regressions = corpus.deletingLastPathComponent().appendingPathComponent(
    "FuzzRegressions")

  /// Inputs that once crashed the fuzzer (Tests/FuzzRegressions, named for the
  /// bug) are refused with an error now, in both decoders.
  @Test func inputsThatOnceCrashedAreRefused() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: Self.regressions.path)
    #expect(!names.isEmpty)
    for name in names {
      let bytes = Array(try Data(contentsOf: Self.regressions.appendingPathComponent(name)))
      // Refused for what they hold, not for an old protocol version.
      #expect(bytes.count > 2 && bytes[2] == WireCodec.protocolVersion, "\(name)")
      #expect(throws: DecodeError.self, "\(name)") { try WireCodec.decode(bytes) }
      var previous = WireMessage.push(.empty)
      #expect(throws: DecodeError.self, "\(name)") {
        try bytes.withUnsafeBytes { try WireCodec.decode($0, reusing: &previous) }
      }
    }
  }
}
