import Foundation
import Testing
import TrainingMath

@testable import WireProtocol

/// The keyed-table section of checkpoint format 4: a sparse model's rows and
/// optimizer state survive a checkpoint bit for bit, and damage is named.
@Suite struct KeyedTableCheckpointTests {
  /// A table of `rows` random keys below 2^`bits`, with `pushes` random pushes applied.
  static func table(
    rows: Int, width: Int, optimizer: SparseOptimizerSettings,
    initialization: RowInitialization = .zero, bits: Int = 24, seed: UInt64 = 1
  ) -> KeyedTable {
    var table = KeyedTable(width: width, optimizer: optimizer, initialization: initialization)
    var generator = SplitMix64(seed: seed)
    let keys = (0..<rows).map { _ in generator.next() >> UInt64(64 - bits) }
    let unique = Array(Set(keys))
    table.apply(
      unique, gradients: (0..<(unique.count * width)).map { _ in generator.nextGaussian() })
    table.apply(
      Array(unique.prefix(rows / 2)),
      gradients: (0..<(min(rows / 2, unique.count) * width)).map { _ in 0.5 })
    return table
  }

  static func checkpoint(_ keyed: CheckpointedKeyedTable?) throws -> ServerCheckpoint {
    let layout = [TensorSpec(name: "w", count: 1)]
    return ServerCheckpoint(
      mode: .async,
      optimizer: Optimizer(
        settings: try OptimizerSettings(kind: .sgd, learningRate: 0.1), parameterCount: 1),
      requiredWorkers: 1, model: ModelDescriptor(name: "chain", layout: layout), version: 7,
      gradientsApplied: 7, rejected: 0, parameters: [0.5],
      sequences: [.init(workerID: 1, sequence: 7)],
      dataset: DatasetIdentity(rows: 10, fingerprint: 3), work: nil, keyedTable: keyed)
  }

  static let ftrl = SparseOptimizerSettings(
    kind: .ftrl, learningRate: 0.05, l1: 1, l2: 0.5, beta: 1)

  @Test(arguments: [
    (SparseOptimizerSettings(kind: .sgd, learningRate: 0.1), "sparse-logreg.h24", 1),
    (
      SparseOptimizerSettings(kind: .adagrad, learningRate: 0.1, initialAccumulator: 1e-4),
      "fm-3.h24", 4
    ),
    (KeyedTableCheckpointTests.ftrl, "fm-2.h24", 3),
  ])
  func aKeyedTableRoundTripsBitForBit(optimizer: SparseOptimizerSettings, name: String, width: Int)
    throws
  {
    let initialization: RowInitialization =
      width == 1 ? .zero : .seededFactors(seed: 11, scale: 0.01)
    let keyed = CheckpointedKeyedTable(
      modelName: name,
      table: Self.table(
        rows: 500, width: width, optimizer: optimizer, initialization: initialization))
    let checkpoint = try Self.checkpoint(keyed)
    let bytes = CheckpointCodec.encode(checkpoint)
    let read = try CheckpointCodec.decode(bytes)
    #expect(read == checkpoint)
    #expect(CheckpointCodec.encode(read) == bytes)
    // The restored table goes on exactly as the original: the same push, the same rows.
    var original = keyed.table
    var restored = try #require(read.keyedTable).table
    let keys: [UInt64] = [1, 2, 1 << 23]
    let gradients = (0..<(3 * width)).map { Double($0) - 1.5 }
    original.apply(keys, gradients: gradients)
    restored.apply(keys, gradients: gradients)
    #expect(original.hasTheSameRows(as: restored))
    var a: [Double] = []
    var b: [Double] = []
    original.read(keys, into: &a)
    restored.read(keys, into: &b)
    #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
  }

  @Test func aHundredThousandRowsRoundTrip() throws {
    let table = Self.table(rows: 100_000, width: 1, optimizer: Self.ftrl, bits: 40)
    #expect(table.count > 99_990)
    let checkpoint = try Self.checkpoint(
      CheckpointedKeyedTable(modelName: "sparse-logreg.h40", table: table))
    let bytes = CheckpointCodec.encode(checkpoint)
    // Each row: key, value, z and n.
    #expect(bytes.count > table.count * 32)
    let read = try CheckpointCodec.decode(bytes)
    #expect(read == checkpoint)
    #expect(read.keyedTable?.table.count == table.count)
  }

  @Test func withoutAKeyedTableOneByteMarksItsAbsence() throws {
    let plain = try Self.checkpoint(nil)
    let bytes = CheckpointCodec.encode(plain)
    #expect(bytes[4] == 4 && bytes[5] == 0)
    #expect(try CheckpointCodec.decode(bytes) == plain)
    #expect(try CheckpointCodec.decode(bytes).keyedTable == nil)
  }

  /// The section's bytes, changed by `edit`, in a checkpoint with a valid CRC.
  func refusal(_ edit: (inout [UInt8], Int) -> Void) throws -> CheckpointCodec.Failure? {
    let keyed = CheckpointedKeyedTable(
      modelName: "fm-1.h8",
      table: Self.table(rows: 3, width: 2, optimizer: Self.ftrl, bits: 8))
    var bytes = Array(CheckpointCodec.encode(try Self.checkpoint(keyed)).dropLast(4))
    let plain = CheckpointCodec.encode(try Self.checkpoint(nil)).count - 4
    // The section starts after the presence byte, where the plain body ends.
    edit(&bytes, plain)
    let crc = CRC32.checksum(bytes)
    bytes += withUnsafeBytes(of: crc.littleEndian) { Array($0) }
    do {
      _ = try CheckpointCodec.decode(bytes)
      return nil
    } catch {
      return error
    }
  }

  @Test func aDamagedSectionIsRefusedByName() throws {
    // name: 1 + 7 bytes, width at +8, kind at +12, lr at +13, l1 +21, l2 +29,
    // beta +37, accumulator +45, initialization +53, rows +54, first key +62.
    func expectNamed(_ field: String, _ edit: (inout [UInt8], Int) -> Void) throws {
      let failure = try refusal(edit)
      guard case .malformed(let reason) = failure else {
        Issue.record("\(field): \(String(describing: failure))")
        return
      }
      #expect(reason.contains(field), "\(reason)")
    }
    try expectNamed("keyed table present") { bytes, start in bytes[start - 1] = 2 }
    try expectNamed("keyed table model name") { bytes, start in bytes[start + 1] = UInt8(ascii: "x")
    }
    try expectNamed("keyed table width") { bytes, start in bytes[start + 8] = 3 }
    try expectNamed("keyed table optimizer kind") { bytes, start in bytes[start + 12] = 3 }
    try expectNamed("keyed table learning rate") { bytes, start in
      bytes.replaceSubrange((start + 13)..<(start + 21), with: [UInt8](repeating: 0, count: 8))
    }
    try expectNamed("keyed table l1") { bytes, start in bytes[start + 28] = 0xFF }
    try expectNamed("keyed table initialization") { bytes, start in bytes[start + 53] = 7 }
    try expectNamed("keyed table rows") { bytes, start in bytes[start + 61] = 0x10 }
    try expectNamed("keyed table key[1]") { bytes, start in
      // The second key (after key, 2 values and 4 state values) made equal to the first.
      let first = start + 62
      let second = first + 8 + 16 + 32
      bytes.replaceSubrange(second..<(second + 8), with: Array(bytes[first..<(first + 8)]))
    }
    try expectNamed("keyed table key[0]") { bytes, start in bytes[start + 62 + 2] = 1 }
    try expectNamed("keyed table values[0]") { bytes, start in
      bytes.replaceSubrange((start + 70)..<(start + 78), with: [0, 0, 0, 0, 0, 0, 0xF8, 0x7F])
    }
    try expectNamed("keyed table state[0]") { bytes, start in
      bytes.replaceSubrange((start + 86)..<(start + 94), with: [0, 0, 0, 0, 0, 0, 0xF0, 0x7F])
    }
    // Cut short (with a fresh CRC): the rows the count promises are not there.
    try expectNamed("keyed table rows") { bytes, start in bytes.removeLast(8) }
  }

  /// The format 1 fixture still reads (no keyed table) and is written as format 4.
  @Test func olderFormatsReadWithoutATable() throws {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("CheckpointFixtures/format-1")
    let checkpoint = try CheckpointCodec.decode(Array(try Data(contentsOf: path)))
    #expect(checkpoint.keyedTable == nil)
    #expect(CheckpointCodec.encode(checkpoint)[4] == 4)
  }
}
