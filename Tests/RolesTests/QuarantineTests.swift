import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// A server with `--quarantine` (snapshots every `every` versions), async unless told.
func quarantiningServer(
  _ mode: ConsistencyMode = .async, every: UInt64 = 2, budget: Int = 1 << 20,
  epochs: UInt64? = nil, chunkRows: Int = 2, optimizer: OptimizerKind = .momentum
) -> ParameterServer {
  ParameterServer(
    configuration: ServerConfiguration(
      mode: mode, requiredWorkers: 1,
      optimizer: try! OptimizerSettings(kind: optimizer, learningRate: 0.05),
      model: chain3, initialParameters: ChainModel.seedWeights, leasedEpochs: epochs,
      chunkRows: chunkRows,
      quarantine: QuarantinePolicy(snapshotEvery: every, snapshotByteBudget: budget)))
}

let coordinatorPeer = PeerID([0, 9])

/// A quarantining async server with snapshots every version within `snapshots`
/// snapshots' worth of bytes (parameters and momentum), workers 0 and 1 joined.
func twoWorkersWithSnapshotBudget(_ snapshots: Int) -> ParameterServer {
  let server = quarantiningServer(every: 1, budget: snapshots * perSnapshot)
  _ = server.receive(join(0), from: peerA, now: 0)
  _ = server.receive(join(1), from: peerB, now: 0)
  return server
}

/// Bytes of one snapshot of `chain3` with momentum.
let perSnapshot = 3 * 8 * 2

/// A confirmed failure (replay, 4 coordinates) of `worker`'s push `sequence`.
func confirmedFailure(_ worker: UInt32, _ sequence: UInt64, confirmed: Bool = true) -> WireMessage {
  .auditResult(
    AuditResult(
      workerID: worker, sequence: sequence, passed: false, maximumRelativeError: 0.5,
      failedChecks: .replay, replayMismatches: 4, confirmed: confirmed))
}

/// A passed audit of `worker`'s push `sequence`, whose application produced `version`.
func passedAudit(_ worker: UInt32, _ sequence: UInt64, appliedAt version: UInt64) -> WireMessage {
  .auditResult(
    AuditResult(
      workerID: worker, sequence: sequence, passed: true, maximumRelativeError: 1e-9,
      appliedAtVersion: version))
}

func errorReply(_ outgoing: [Outgoing]) -> ErrorReply? {
  guard outgoing.count == 1, case .error(let reply) = outgoing[0].message else { return nil }
  return reply
}

func bits(_ values: [Double]) -> [UInt64] { values.map(\.bitPattern) }

@Suite struct QuarantineTests {
  @Test func aQuarantinedWorkerIsRefusedWhateverItSends() throws {
    let server = quarantiningServer()
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    _ = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
    _ = server.receive(push(1, 1, at: 0, [1, 1, 1]), from: peerB, now: 1)
    #expect(server.receive(confirmedFailure(0, 1), from: coordinatorPeer, now: 2).isEmpty)
    #expect(server.joinedWorkers == [1])
    let record = try #require(server.quarantine.workers.first)
    #expect(record.workerID == 0 && record.sequence == 1 && record.failedChecks == .replay)
    #expect(record.replayMismatches == 4 && record.quarantinedAtVersion == 2)
    let version = server.version
    let parameters = bits(server.parameters)
    let messages: [WireMessage] = [
      join(0), push(0, 2, at: version, [1, 1, 1]),
      .pushes([
        GradientPush(
          workerID: 0, sequence: 3, computedAtVersion: version, rows: [0],
          gradient: NamedTensors(layout: chain3.layout, values: [1, 1, 1]))
      ]),
      .heartbeat(workerID: 0), .leaseRequest(workerID: 0), .leave(workerID: 0),
    ]
    for message in messages {
      for peer in [peerA, peerC] {
        let reply = try #require(errorReply(server.receive(message, from: peer, now: 3)))
        #expect(reply.code == .quarantined, "\(message.type)")
        #expect(
          reply.message.hasPrefix(
            "worker 0 is quarantined: its push 1 failed the replay (4 coordinates differ), confirmed"
          ))
        #expect(reply.message.hasSuffix("this server takes nothing more from it"))
      }
    }
    #expect(server.rejectedByReason[.quarantined] == UInt64(2 * messages.count))
    // The others go on.
    #expect(
      weights(server.receive(push(1, 2, at: 0, [1, 1, 1]), from: peerB, now: 4), for: peerB) != nil)
    #expect(bits(server.parameters) != parameters)
  }

  @Test func unconfirmedFailuresAndServersWithoutQuarantineChangeNothing() {
    let plain = makeServer(.async)
    let quarantining = quarantiningServer()
    for server in [plain, quarantining] {
      _ = server.receive(join(0), from: peerA, now: 0)
      _ = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
      let parameters = bits(server.parameters)
      let version = server.version
      let failure =
        server === plain ? confirmedFailure(0, 1) : confirmedFailure(0, 1, confirmed: false)
      #expect(server.receive(failure, from: coordinatorPeer, now: 2).isEmpty)
      #expect(server.auditsFailed == 1)
      #expect(server.quarantine.workers.isEmpty && server.quarantine.rollbacks == 0)
      #expect(bits(server.parameters) == parameters && server.version == version)
      #expect(
        weights(server.receive(push(0, 2, at: 1, [1, 1, 1]), from: peerA, now: 3), for: peerA)
          != nil)
    }
    #expect(!plain.quarantine.enabled && quarantining.quarantine.enabled)
    #expect(plain.snapshots == nil)
  }

  @Test func aSecondConfirmedFailureChangesNothing() {
    let server = quarantiningServer()
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
    _ = server.receive(push(0, 2, at: 1, [1, 1, 1]), from: peerA, now: 1)
    _ = server.receive(confirmedFailure(0, 2), from: coordinatorPeer, now: 2)
    let report = server.quarantine
    let parameters = bits(server.parameters)
    #expect(report.rollbacks == 1 && report.workers.count == 1)
    _ = server.receive(confirmedFailure(0, 1), from: coordinatorPeer, now: 3)
    #expect(server.quarantine == report)
    #expect(bits(server.parameters) == parameters)
  }

  /// Worker 0 passes an audit of its push at version 2; its pushes after the
  /// snapshot at 4 are undone, and the parameters and the optimizer's state
  /// are the snapshot's, bit for bit, at a new version.
  @Test func rollbackRestoresTheSnapshotBitForBit() throws {
    let server = quarantiningServer(every: 2)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    _ = server.receive(push(0, 1, at: 0, [0.3, -0.1, 0.2]), from: peerA, now: 1)  // v1
    _ = server.receive(push(0, 2, at: 1, [0.1, 0.2, -0.4]), from: peerA, now: 1)  // v2
    _ = server.receive(passedAudit(0, 2, appliedAt: 2), from: coordinatorPeer, now: 1)
    _ = server.receive(push(1, 1, at: 2, [0.5, 0.5, 0.5]), from: peerB, now: 1)  // v3
    _ = server.receive(push(1, 2, at: 3, [-0.2, 0.1, 0.3]), from: peerB, now: 1)  // v4: snapshot
    let atSnapshot = bits(server.parameters)
    let optimizerAtSnapshot = server.optimizer
    _ = server.receive(push(0, 3, at: 4, [9, 9, 9]), from: peerA, now: 1)  // v5
    _ = server.receive(push(1, 3, at: 5, [1, 2, 3]), from: peerB, now: 1)  // v6: snapshot
    _ = server.receive(push(0, 4, at: 6, [9, 9, 9]), from: peerA, now: 1)  // v7
    _ = server.receive(confirmedFailure(0, 4), from: coordinatorPeer, now: 2)
    #expect(bits(server.parameters) == atSnapshot)
    #expect(server.optimizer == optimizerAtSnapshot)
    #expect(server.version == 8)
    let record = try #require(server.quarantine.workers.first)
    #expect(record.rolledBackTo == 4 && record.quarantinedAtVersion == 7)
    #expect(server.quarantine.rollbacks == 1 && server.quarantine.versionsRolledBack == 3)
    // The next reply carries the restored weights at the new version; a retry of
    // an undone push is answered, not applied again.
    let retried = try #require(
      weights(server.receive(push(1, 3, at: 5, [1, 2, 3]), from: peerB, now: 3), for: peerB))
    #expect(retried.version == 8 && bits(retried.parameters.values) == atSnapshot)
    #expect(bits(server.parameters) == atSnapshot)
  }

  @Test func aWorkerNeverVouchedForIsRolledBackToBeforeItsFirstPush() throws {
    let server = quarantiningServer(every: 3)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    for sequence in UInt64(1)...4 {
      _ = server.receive(
        push(1, sequence, at: server.version, [0.1, 0.1, 0.1]), from: peerB, now: 1)
    }
    let atThree = server.snapshots!.snapshots.first { $0.version == 3 }.map {
      bits($0.store.values)
    }
    _ = server.receive(push(0, 1, at: server.version, [5, 5, 5]), from: peerA, now: 1)  // v5
    _ = server.receive(push(1, 5, at: server.version, [0.1, 0.1, 0.1]), from: peerB, now: 1)
    _ = server.receive(confirmedFailure(0, 1), from: coordinatorPeer, now: 2)
    #expect(server.quarantine.workers.first?.rolledBackTo == 3)
    #expect(bits(server.parameters) == atThree)
  }

  @Test func aQuarantinedWorkersLeaseReturnsToThePool() throws {
    let server = quarantiningServer(epochs: 1, chunkRows: 2)
    let data = DatasetIdentity(rows: 4, fingerprint: 7)
    _ = server.receive(join(0, data: data), from: peerA, now: 0)
    _ = server.receive(join(1, data: data), from: peerB, now: 0)
    func leasedRows(_ worker: UInt32, _ peer: PeerID) -> Range<Int>? {
      let answer = server.receive(.leaseRequest(workerID: worker), from: peer, now: 1)
      guard case .lease(let lease) = answer.first?.message else { return nil }
      return lease.rows
    }
    #expect(leasedRows(0, peerA) == 0..<2)
    _ = server.receive(confirmedFailure(0, 1), from: coordinatorPeer, now: 2)
    #expect(leasedRows(1, peerB) == 0..<2)
    #expect(!server.work!.holdsLease(0))
  }

  /// Three workers train two epochs of leased rows; worker 1 passes one audit,
  /// then fails one, confirmed, in the second epoch. Counting the rows whose
  /// pushes the final parameters hold (those applied up to the snapshot, and
  /// all applied after the rollback), every row of every epoch is applied
  /// exactly once, and none by worker 1 after its vouched push.
  @Test(arguments: [UInt64(2), 3, 5])
  func leasedRowsAreAppliedExactlyOnceAfterARollback(every: UInt64) throws {
    let rows = 13
    let epochs: UInt64 = 2
    let server = quarantiningServer(every: every, epochs: epochs, chunkRows: 2)
    let data = DatasetIdentity(rows: UInt64(rows), fingerprint: 11)
    let peers = [peerA, peerB, peerC]
    struct Applied {
      var worker: UInt32
      var epoch: UInt64
      var row: Int
      var version: UInt64
    }
    var log: [Applied] = []
    var lease: [Lease?] = [nil, nil, nil]
    var sequence: [UInt64] = [0, 0, 0]
    var done = [false, false, false]
    var vouched: UInt64?
    var quarantined = false
    for id in 0..<3 { _ = server.receive(join(UInt32(id), data: data), from: peers[id], now: 0) }
    var round = 0
    while done.contains(false) && round < 10_000 {
      round += 1
      let id = round % 3
      guard !done[id] else { continue }
      let worker = UInt32(id)
      if lease[id] == nil || lease[id]!.rowCount == 0 {
        let answer = server.receive(.leaseRequest(workerID: worker), from: peers[id], now: 1)
        switch answer.first?.message {
        case .lease(let granted): lease[id] = granted
        case .noLease(let no): if no.finished { done[id] = true }
        case .error(let error):
          #expect(error.code == .quarantined && id == 1)
          done[id] = true
        default: Issue.record("unexpected \(answer)")
        }
        continue
      }
      let row = Int(lease[id]!.firstRow)
      sequence[id] += 1
      let answer = server.receive(
        .push(
          GradientPush(
            workerID: worker, sequence: sequence[id], computedAtVersion: server.version,
            rows: [row],
            gradient: NamedTensors(
              layout: chain3.layout, values: [0.01 * Double(row + 1), -0.01, 0.02]))),
        from: peers[id], now: 1)
      switch answer.first?.message {
      case .weights(let reply):
        log.append(
          Applied(worker: worker, epoch: lease[id]!.epoch, row: row, version: reply.version))
        lease[id]!.firstRow += 1
        lease[id]!.rowCount -= 1
      case .error(let error) where error.code == .leaseLost:
        lease[id] = nil
      case .error(let error) where error.code == .quarantined:
        #expect(id == 1)
        done[id] = true
      default: Issue.record("unexpected \(answer)")
      }
      // Worker 1's third push passes; its seventh (in the second epoch) fails, confirmed.
      if id == 1, sequence[1] == 3, vouched == nil, let last = log.last, last.worker == 1 {
        vouched = last.version
        _ = server.receive(
          passedAudit(1, 3, appliedAt: last.version), from: coordinatorPeer, now: 2)
      }
      if id == 1, sequence[1] == 7, !quarantined {
        quarantined = true
        _ = server.receive(confirmedFailure(1, 7), from: coordinatorPeer, now: 2)
      }
    }
    #expect(!done.contains(false))
    #expect(server.work!.isFinished)
    let record = try #require(server.quarantine.workers.first)
    let back = try #require(record.rolledBackTo)
    // Back to the snapshot before worker 1's first unvouched push: not further.
    #expect(back + every > vouched!)
    // The effective history: up to the snapshot, and after the quarantine.
    let effective = log.filter { $0.version <= back || $0.version > record.quarantinedAtVersion }
    for epoch in 0..<epochs {
      #expect(
        effective.filter { $0.epoch == epoch }.map(\.row).sorted() == Array(0..<rows),
        "epoch \(epoch), rolled back to \(back) from \(record.quarantinedAtVersion)")
    }
    #expect(!effective.contains { $0.worker == 1 && $0.version > vouched! })
    #expect(server.quarantine.versionsRolledBack == record.quarantinedAtVersion - back)
  }

  /// Snapshots every version within a budget of five: without audits the
  /// oldest (needed by every worker) stays and at most five are kept; once the
  /// workers' pushes are vouched for, only the newest is left.
  @Test func snapshotsArePrunedAndTheirMemoryBounded() throws {
    let server = twoWorkersWithSnapshotBudget(5)
    for sequence in UInt64(1)...50 {
      _ = server.receive(
        push(0, sequence, at: server.version, [0.01, 0.01, 0.01]), from: peerA, now: 1)
      _ = server.receive(
        push(1, sequence, at: server.version, [0.01, 0.02, 0.01]), from: peerB, now: 1)
      let snapshots = try #require(server.snapshots)
      #expect(snapshots.snapshots.count <= 5)
      #expect(snapshots.byteCount <= 5 * perSnapshot)
      #expect(snapshots.snapshots.first?.version == 0)
    }
    #expect(server.snapshots!.thinned > 0)
    // Worker 0 is vouched for up to its latest push: it pins nothing; worker 1
    // still pins the oldest.
    _ = server.receive(passedAudit(0, 50, appliedAt: 99), from: coordinatorPeer, now: 2)
    #expect(server.snapshots!.needs[0] == nil)
    #expect(server.snapshots!.snapshots.first?.version == 0)
    _ = server.receive(passedAudit(1, 50, appliedAt: 100), from: coordinatorPeer, now: 2)
    #expect(server.snapshots!.snapshots.map(\.version) == [100])
  }

  /// Thinning moves a need to an older snapshot: a rollback may go back further, never less.
  @Test func thinnedSnapshotsRollBackFurtherNeverLess() throws {
    let server = twoWorkersWithSnapshotBudget(3)
    for sequence in UInt64(1)...10 {
      _ = server.receive(
        push(1, sequence, at: server.version, [0.01, 0.01, 0.01]), from: peerB, now: 1)
    }
    _ = server.receive(push(0, 1, at: server.version, [7, 7, 7]), from: peerA, now: 1)  // v11
    for sequence in UInt64(11)...20 {
      _ = server.receive(
        push(1, sequence, at: server.version, [0.01, 0.01, 0.01]), from: peerB, now: 1)
    }
    _ = server.receive(confirmedFailure(0, 1), from: coordinatorPeer, now: 2)
    let back = try #require(server.quarantine.workers.first?.rolledBackTo)
    #expect(back <= 10)
  }

  /// A gradient of the quarantined worker waiting for its sync step is not
  /// applied: the step averages the others'.
  @Test func aSyncStepDropsTheQuarantinedWorkersGradient() throws {
    let server = quarantiningServer(.sync, optimizer: .sgd)
    for (id, peer) in [(UInt32(0), peerA), (1, peerB), (2, peerC)] {
      _ = server.receive(join(id, of: 3), from: peer, now: 0)
    }
    _ = server.receive(push(0, 1, at: 0, [100, 100, 100]), from: peerA, now: 1)
    _ = server.receive(push(1, 1, at: 0, [1, 2, 3]), from: peerB, now: 1)
    #expect(server.receive(confirmedFailure(0, 1), from: coordinatorPeer, now: 2).isEmpty)
    let step = server.receive(push(2, 1, at: 0, [3, 2, 1]), from: peerC, now: 3)
    var expected = ChainModel.seedWeights
    var sgd = try Optimizer(learningRate: 0.05)
    sgd.apply(gradient: [2, 2, 2], to: &expected)
    #expect(weights(step, for: peerB)?.version == 1)
    #expect(bits(server.parameters) == bits(expected))
  }

  @Test func syncServersQuarantineWithoutRollingBack() {
    let server = quarantiningServer(.sync)
    _ = server.receive(join(0), from: peerA, now: 0)
    _ = server.receive(join(1), from: peerB, now: 0)
    _ = server.receive(push(0, 1, at: 0, [1, 1, 1]), from: peerA, now: 1)
    let released = server.receive(confirmedFailure(1, 1), from: coordinatorPeer, now: 2)
    // The step no longer waits for worker 1.
    #expect(weights(released, for: peerA)?.version == 1)
    #expect(server.quarantine.workers.first?.rolledBackTo == nil)
    #expect(server.quarantine.rollbacks == 0 && server.snapshots == nil)
  }
}
