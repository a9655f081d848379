import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// The server's membership on its own: no server, no sockets.
@Suite struct MembershipTests {
  func joining(_ id: UInt32, of count: Int = 2, data: DatasetIdentity = seedData) -> Join {
    guard case .join(let join) = join(id, of: count, data: data) else { fatalError("not a join") }
    return join
  }

  func applied(_ id: UInt32, _ sequence: UInt64) -> GradientPush {
    guard case .push(let push) = push(id, sequence, at: 0, [0, 0, 0]) else {
      fatalError("not a push")
    }
    return push
  }

  /// The code of a refusal, or nil.
  func refusal(_ admission: Membership.Admission) -> ErrorCode? {
    guard case .refused(let code, _) = admission else { return nil }
    return code
  }

  @Test func aJoinIsAdmittedOnceAndRetriedFromTheSamePeer() {
    let members = Membership()
    #expect(members.admit(joining(0), from: peerA, now: 1, leased: false) == .admitted)
    #expect(members.admit(joining(0), from: peerA, now: 5, leased: false) == .retried)
    #expect(members.workers[0]?.lastSeen == 5)
    #expect(
      refusal(members.admit(joining(0), from: peerB, now: 6, leased: false)) == .duplicateWorker)
    #expect(members.isJoined(0, from: peerA) && !members.isJoined(0, from: peerB))
    #expect(members.dataset == seedData)
    #expect(members.everJoined == [0])
  }

  /// Every worker reads the same data; without leases every worker splits it
  /// into the same number of shards. A refused join changes nothing.
  @Test func joinsWithAnotherDataSetOrShardCountAreRefused() {
    let members = Membership()
    _ = members.admit(joining(0), from: peerA, now: 0, leased: false)
    let other = DatasetIdentity(rows: 3, fingerprint: seedData.fingerprint)
    #expect(
      refusal(members.admit(joining(1, data: other), from: peerB, now: 0, leased: false))
        == .datasetMismatch)
    #expect(
      refusal(members.admit(joining(1, of: 3), from: peerB, now: 0, leased: false))
        == .shardMismatch)
    #expect(members.workers.keys.sorted() == [0])
    #expect(members.admit(joining(1, of: 3), from: peerB, now: 0, leased: true) == .admitted)
  }

  /// Speaking keeps a worker alive; only a worker silent past the limit is listed.
  @Test func silentWorkersAreListedInIDOrder() {
    let members = Membership()
    for id: UInt32 in [2, 0, 1] {
      _ = members.admit(joining(id, of: 3), from: PeerID([UInt8(id)]), now: 0, leased: false)
    }
    #expect(members.seen(1, from: PeerID([1]), now: 80))
    #expect(!members.seen(1, from: peerA, now: 90))
    #expect(members.silentWorkers(now: 100, limit: 50) == [0, 2])
    #expect(members.silentWorkers(now: 50, limit: 50).isEmpty)
  }

  /// Applied sequences are kept after a worker leaves, and survive a checkpoint.
  @Test func appliedSequencesOutliveTheWorkerAndRestore() throws {
    let members = Membership()
    _ = members.admit(joining(0), from: peerA, now: 0, leased: false)
    members.markApplied(applied(0, 1), staleness: 0)
    members.markApplied(applied(0, 3), staleness: 2)
    #expect(members.workers[0]?.pushesApplied == 2 && members.workers[0]?.lastStaleness == 2)
    members.remove(0)
    #expect(members.workers.isEmpty)
    #expect(members.window(of: 0).highest == 3)
    #expect(members.window(of: 0).verdict(for: 1) == .applied)
    #expect(members.window(of: 0).verdict(for: 2) == .new)
    #expect(members.window(of: 7) == SequenceWindow())

    let server = makeServer(.async)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(push(0, 4, at: 0, [1, 1, 1]), from: peerA, now: 0)
    let restored = Membership()
    restored.restore(from: server.checkpoint)
    #expect(restored.window(of: 0) == server.membership.window(of: 0))
    #expect(restored.window(of: 0).highest == 4)
    #expect(restored.dataset == seedData && restored.workers.isEmpty)
  }
}
