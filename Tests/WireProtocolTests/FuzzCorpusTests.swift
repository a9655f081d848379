import Foundation
import Testing

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
      } else {
        let message = try WireCodec.decode(bytes)
        #expect("\(message.type)" == name)
        #expect(WireCodec.encode(message) == bytes)
      }
    }
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
      #expect(throws: DecodeError.self, "\(name)") { try WireCodec.decode(bytes) }
      var previous = WireMessage.push(.empty)
      #expect(throws: DecodeError.self, "\(name)") {
        try bytes.withUnsafeBytes { try WireCodec.decode($0, reusing: &previous) }
      }
    }
  }
}
