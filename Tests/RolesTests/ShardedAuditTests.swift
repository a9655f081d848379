import Foundation
import SystemCalls
import Testing
import TrainingMath
import WireProtocol
import ZeroMQ

@testable import Roles

/// A server shard played by the test on its own thread: it answers `status`
/// as shard `index` of `count` (of the 3 weights of chain3, shard 0 owns two),
/// and on an audit subscription sends its part of `workers` audit records,
/// shard 1 only once shard 0 has sent all of its parts (`sent`).
final class FakeShard {
  let endpoint: String
  private let stop = StopFlag()
  private let done = DispatchSemaphore(value: 0)

  static func range(_ index: Int) -> Range<Int> { index == 0 ? 0..<2 : 2..<3 }

  init(index: Int, context: Context, workers: Int, sent: DispatchSemaphore) throws {
    let bound = Box()
    let ready = DispatchSemaphore(value: 0)
    let (stop, done) = (self.stop, self.done)
    Thread.detachNewThread {
      defer { done.signal() }
      guard let socket = try? Socket(context, kind: .router),
        (try? socket.bind("tcp://127.0.0.1:*")) != nil, let endpoint = try? socket.lastEndpoint()
      else {
        ready.signal()
        return
      }
      bound.set(endpoint)
      ready.signal()
      let range = Self.range(index)
      let slice = NamedTensors(
        layout: [TensorSpec(name: "w", count: range.count)],
        values: Array(ChainModel.seedWeights[range]))
      func send(_ message: WireMessage, to peer: Message) {
        let frames =
          [Message(bytes: peer.bytes)] + WireCodec.encodeFrames(message).map { Message(bytes: $0) }
        _ = try? socket.send(multipart: frames)
      }
      while !stop.isSet {
        guard (try? socket.waitForInput(timeoutMilliseconds: 50)) == true,
          let (frames, _) = (try? socket.receiveMultipart(.dontWait, maximumFrames: 8)) ?? nil,
          frames.count >= 2,
          let message = try? WireCodec.decode(frames: frames.dropFirst().map(\.bytes))
        else { continue }
        switch message {
        case .statusRequest:
          send(
            .status(
              ServerStatus(
                mode: .async, version: 0, gradientsApplied: 0, rejected: 0, learningRate: 0.05,
                requiredWorkers: 1, modelName: "chain", parameters: slice, workers: [],
                workersLeft: 0, auditRecordsSent: 0,
                serverShard: try! Shard(index: index, count: 2),
                parameterOffset: UInt64(range.lowerBound), totalParameters: 3)),
            to: frames[0])
        case .auditSubscribe:
          if index == 1 {
            // Well after shard 0's parts: the link holds all of them first.
            _ = sent.wait(timeout: .now() + 10)
            usleep(300_000)
          }
          for worker in 0..<workers {
            send(
              .auditRecord(
                AuditRecord(
                  workerID: UInt32(worker), sequence: 1, computedAtVersion: 0,
                  appliedAtVersion: 1, modelName: "chain", weights: slice,
                  dataset: DatasetIdentity(rows: 2, fingerprint: Dataset.seed.fingerprint),
                  rows: [0], gradient: slice)),
              to: frames[0])
          }
          if index == 0 { sent.signal() }
        default:
          break
        }
      }
    }
    ready.wait()
    guard let endpoint = bound.value else {
      done.wait()
      throw RoleError.invalidArgument("the fake shard did not start")
    }
    self.endpoint = endpoint
  }

  func shutdown() {
    stop.set()
    done.wait()
  }
}

/// Audits through server shards in a cluster of more than 256 workers: one
/// shard's parts of every worker's record may all arrive before the other's,
/// and the link must keep them until they can be joined. (It kept at most 256
/// and dropped the rest, so some workers were never audited.)
struct ShardedAuditTests {
  @Test func everyWorkersRecordIsJoinedWhenOneShardIsFarAhead() throws {
    let workers = 600
    let context = try Context()
    let sent = DispatchSemaphore(value: 0)
    let shards = try (0..<2).map {
      try FakeShard(index: $0, context: context, workers: workers, sent: sent)
    }
    defer { for shard in shards { shard.shutdown() } }
    let link = try ShardedServerLink(
      connections: shards.map {
        try ServerConnection(context: context, endpoint: $0.endpoint, parameterCount: 3)
      }, timeoutMilliseconds: 10_000)
    try link.send(.auditSubscribe(AuditSubscription(every: 1, leaseMilliseconds: 6000)))
    var joined: Set<UInt32> = []
    let deadline = MonotonicClock.milliseconds() + 20_000
    while joined.count < workers, MonotonicClock.milliseconds() < deadline {
      guard case .auditRecord(let record)? = try link.receive(timeoutMilliseconds: 200) else {
        continue
      }
      #expect(record.weights.values == ChainModel.seedWeights)
      #expect(record.weights.layout == [TensorSpec(name: "w", count: 3)])
      joined.insert(record.workerID)
    }
    #expect(joined.count == workers)
  }
}
