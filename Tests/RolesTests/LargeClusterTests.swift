import Testing
import TrainingMath
import WireProtocol

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
