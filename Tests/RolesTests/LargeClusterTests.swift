import Foundation
import Testing
import TrainingMath
import WireProtocol
import ZeroMQ

@testable import Roles

/// A server with 1,000 joined workers (issue 9 item 1): joins, a sync step of
/// all of them, and a status that lists every one and goes over the wire.
struct LargeClusterTests {
  func peer(_ id: Int) -> PeerID { PeerID([9, UInt8(id >> 8), UInt8(id & 0xFF)]) }

  @Test func aThousandWorkersJoinTrainAndAreListed() throws {
    let count = 1000
    let server = makeServer(.sync, workers: count)
    for id in 0..<count {
      let reply = server.receive(join(UInt32(id), of: count), from: peer(id), now: 0)
      #expect(weights(reply, for: peer(id)) != nil, "worker \(id) was not answered")
    }
    // One sync step: every worker's gradient, then every worker answered.
    var answered = 0
    for id in 0..<count {
      answered +=
        server.receive(
          push(UInt32(id), 1, at: 0, [1e-3, 1e-3, 1e-3]), from: peer(id), now: 1
        ).count
    }
    #expect(answered == count)
    #expect(server.version == 1)

    let out = server.receive(.statusRequest, from: PeerID([1]), now: 2)
    let message = try #require(out.first?.message)
    let bytes = WireCodec.encode(message)
    #expect(bytes.count < SocketDefaults.maximumMessageSize(parameterCount: 3))
    guard case .status(let status) = try WireCodec.decode(bytes) else {
      Issue.record("not a status")
      return
    }
    #expect(status.workers.map(\.workerID) == (0..<UInt32(count)).map { $0 })
    #expect(status.workers.allSatisfy { $0.pushesApplied == 1 })
  }
}

/// Whether this process may hold `count` more open files (after lifting its
/// soft limit to the hard one, as the server does).
func mayOpen(_ count: Int) -> Bool { (OpenFileLimit.raiseToHardLimit() ?? 0) >= count + 256 }

/// 1,000 workers over real TCP connections to one sync server (both ends in
/// this process: 2,000 descriptors, so only where the limit allows).
@Suite(.serialized, .enabled(if: mayOpen(2 * 1000), "needs 2,256 open files"))
struct LargeClusterSocketTests {
  @Test func aThousandConnectedWorkersJoinStepAndAreListed() throws {
    let count = 1000
    let server = try ServerThread(mode: .sync, workers: count)
    defer { server.shutdown() }
    let (context, endpoint) = (server.context, server.endpoint)
    // libzmq allows 1,023 sockets per context: the workers use two more.
    let clients = try (0..<2).map { _ in try Context() }
    let workers = try (0..<count).map { id in
      try ServerConnection(
        context: clients[id % 2], endpoint: endpoint, parameterCount: 3,
        routingID: [UInt8(id >> 8), UInt8(id & 0xFF), 1])
    }
    func replies(_ what: String) throws -> [UInt64] {
      try workers.enumerated().map { id, worker in
        guard case .weights(let reply)? = try worker.receive(timeoutMilliseconds: 30_000) else {
          throw RoleError.invalidArgument("worker \(id) got no \(what) reply")
        }
        return reply.version
      }
    }
    for (id, worker) in workers.enumerated() { try worker.send(join(UInt32(id), of: count)) }
    #expect(try replies("join").allSatisfy { $0 == 0 })
    // One sync step: answered only once all 1,000 gradients are in.
    for (id, worker) in workers.enumerated() {
      try worker.send(push(UInt32(id), 1, at: 0, [1e-3, 1e-3, 1e-3]))
    }
    #expect(try replies("push").allSatisfy { $0 == 1 })
    let observer = try ServerConnection(context: context, endpoint: endpoint, parameterCount: 3)
    let status = try observer.status(timeoutMilliseconds: 30_000)
    #expect(status.workers.count == count)
    #expect(status.workers.allSatisfy { $0.pushesApplied == 1 })
    #expect(status.version == 1)
  }
}

/// The weights kept for audits of stale gradients stay within a memory budget
/// however many workers join (two versions per worker of a large model would
/// not fit).
struct AuditHistoryTests {
  @Test func keptVersionsGrowWithWorkersUpToTheBudget() {
    #expect(AuditSubscriptions.historyLimit(workers: 1, parameters: 3) == 8)
    #expect(AuditSubscriptions.historyLimit(workers: 1000, parameters: 3) == 2002)
    let million = AuditSubscriptions.historyLimit(workers: 1000, parameters: 1_000_000)
    #expect(million * 1_000_000 * 8 <= AuditSubscriptions.historyByteBudget)
    #expect(million == AuditSubscriptions.historyByteBudget / 8_000_000)
    #expect(AuditSubscriptions.historyLimit(workers: 1000, parameters: 1 << 30) == 8)
  }
}
