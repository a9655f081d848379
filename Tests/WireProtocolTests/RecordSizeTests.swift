import Testing
import TrainingMath

@testable import WireProtocol

/// A decoder that bounds a count by a record size uses the size its encoder
/// writes: a larger one refuses valid messages, a smaller one lets a hostile
/// count through to the reads (which still refuse it, later).
@Suite struct RecordSizeTests {
  func status(workers count: Int) throws -> WireMessage {
    let tensors = NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [0.5])
    let workers = try (0..<count).map { index in
      WorkerStatus(
        workerID: UInt32(index), shard: try Shard(index: index, count: count),
        pushesApplied: UInt64(index), lastSequence: UInt64(index), lastStaleness: 1)
    }
    return .status(
      ServerStatus(
        mode: .async, version: 1, gradientsApplied: 1, rejected: 0, learningRate: 0.1,
        requiredWorkers: 1, modelName: "chain", parameters: tensors, workers: workers,
        workersLeft: 0, auditRecordsSent: 0))
  }

  /// 100 workers: more than a 40-byte bound lets through with the status's
  /// fixed tail after the records (the decoder refused more than about 30).
  @Test func aStatusOfAHundredWorkersDecodes() throws {
    let message = try status(workers: 100)
    #expect(try WireCodec.decode(WireCodec.encode(message)) == message)
  }

  /// The sizes the decoders bound with are the bytes each record adds.
  @Test func recordSizesAreWhatTheEncodersWrite() throws {
    let perWorker =
      WireCodec.encodedSize(of: try status(workers: 3))
      - WireCodec.encodedSize(of: try status(workers: 2))
    #expect(perWorker == WorkerStatus.encodedSize)
    #expect(WorkerStatus.encodedSize == 36)
    let push = GradientPush(
      workerID: 1, sequence: 1, computedAtVersion: 0, rows: [1],
      gradient: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [0.5]))
    var longer = push
    longer.rows += [2]
    let perRow =
      WireCodec.encodedSize(of: .push(longer)) - WireCodec.encodedSize(of: .push(push))
    #expect(perRow == RowNumbers.encodedSize)
  }
}
