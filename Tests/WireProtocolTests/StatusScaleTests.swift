import Testing
import TrainingMath

@testable import WireProtocol

/// Statuses of large clusters: every joined worker has a record in the status,
/// so a server with thousands of workers must still be able to say so.
struct StatusScaleTests {
  /// A status listing `count` workers, each on its own shard of `count`, with
  /// the smallest tail (no last audit, an empty optimizer description): the
  /// frame in which the worker records weigh the most.
  func status(workers count: Int) throws -> WireMessage {
    let workers = try (0..<count).map { index in
      WorkerStatus(
        workerID: UInt32(index), shard: try Shard(index: index, count: count),
        pushesApplied: UInt64(index), lastSequence: UInt64(index) * 3, lastStaleness: 1)
    }
    return .status(
      ServerStatus(
        mode: .sync, version: 9, gradientsApplied: 18, rejected: 0, learningRate: 0.05,
        requiredWorkers: UInt32(count), modelName: "chain",
        parameters: NamedTensors(layout: [TensorSpec(name: "w", count: 1)], values: [0.5]),
        workers: workers, workersLeft: 0, auditRecordsSent: 0, optimizer: ""))
  }

  /// Issue 9: the decoder bounded the count at 40 bytes a record where a record
  /// is 36, so a status of more than about 30 workers did not decode.
  @Test(arguments: [1, 34, 1000, WireCodec.maximumWorkers])
  func aStatusOfManyWorkersRoundTrips(workers count: Int) throws {
    let message = try status(workers: count)
    let bytes = WireCodec.encode(message)
    #expect(try WireCodec.decode(bytes) == message)
    #expect(try WireCodec.decode(frames: WireCodec.encodeFrames(message)) == message)
  }

  /// Each worker adds exactly the record size the decoder bounds the count with.
  @Test func aWorkerRecordIsTheSizeTheDecoderAssumes() throws {
    let none = WireCodec.encodedSize(of: try status(workers: 0))
    for count in [1, 2, 1000] {
      let size = WireCodec.encodedSize(of: try status(workers: count))
      #expect(size - none == count * WorkerStatus.encodedSize)
    }
  }

  /// A count above what the frame holds is refused before anything is read.
  @Test func aCountBeyondTheFrameIsRefused() throws {
    var bytes = WireCodec.encode(try status(workers: 1000))
    let countOffset = bytes.count - 1000 * WorkerStatus.encodedSize - tailByteCount - 4
    // 1000 records and the tail hold no more than 1000 + tail / record workers.
    let tooMany = UInt32(1000 + tailByteCount / WorkerStatus.encodedSize + 1)
    withUnsafeBytes(of: tooMany.littleEndian) {
      bytes.replaceSubrange(countOffset..<countOffset + 4, with: $0)
    }
    #expect(throws: DecodeError.self) { try WireCodec.decode(bytes) }
  }

  /// Bytes after the worker records in `status(workers:)`.
  var tailByteCount: Int {
    // workers left, audit records, epochs, epoch, rows, dataset rows, dead,
    // optimizer (u16 length, empty), current rate, staleness, shard, offset,
    // total, audits reported, audits failed, the last audit's, checkpoint
    // report's, resume report's and evaluation's flags, the quarantine report
    // (enabled, count, rollbacks, versions rolled back).
    4 + 8 + 8 + 8 + 8 + 8 + 4 + 2 + 8 + 8 + 8 + 8 + 8 + 8 + 8 + 1 + 1 + 1 + 1 + (1 + 4 + 8 + 8)
  }
}
