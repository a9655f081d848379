import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// A server that crashes and resumes from an older checkpoint, in memory: the
/// workers must redo what it lacks, exactly once, and a leased job's end must
/// be found complete after a restart.
@Suite struct ServerRestartTests {
  static let rows = 40
  static let epochs = 3

  /// One fixed-shard worker against a server that is replaced, once it has
  /// applied `crashAt` gradients, by one resumed from the checkpoint taken at
  /// version `checkpointAt` (whatever was in flight is lost with the crash;
  /// the worker resends as its loop would). Returns the final server and worker.
  func runWithACrash(
    crashAt: Int, checkpointAt: Int, pipeline: Int = 1, pushesPerFrame: Int = 1,
    mode: ConsistencyMode = .async, batchSize: Int = 1, shuffleSeed: UInt64? = nil,
    prepare: (WorkerSession<ChainModel>) -> Void = { _ in },
    sent: (WireMessage) -> Void = { _ in }
  ) throws -> (ParameterServer, WorkerSession<ChainModel>) {
    let data = try Dataset.generate(rows: Self.rows, seed: 11, noise: 0.1)
    let worker = try WorkerSession(
      workerID: 3, source: .shard(.whole, epochs: Self.epochs), dataset: data,
      model: ChainModel(layers: 3), batchSize: batchSize, pipeline: pipeline,
      pushesPerFrame: pushesPerFrame, shuffleSeed: shuffleSeed)
    prepare(worker)
    var server = makeServer(mode)
    let peer = PeerID([9, 9])
    var snapshot: ServerCheckpoint?
    var crashed = false
    var outstanding = worker.start()
    var queue = [outstanding]
    for _ in 0..<100_000 {
      if !crashed, server.gradientsApplied >= crashAt {
        server = try ParameterServer(configuration: server.configuration, resuming: snapshot!)
        crashed = true
        queue.removeAll()  // lost with the crash
      }
      if queue.isEmpty {
        // No answer: the loop resends what is unanswered.
        let unanswered = worker.unacknowledgedPushes
        queue = unanswered.isEmpty ? [outstanding] : unanswered
      }
      let message = queue.removeFirst()
      sent(message)
      let replies = server.receive(message, from: peer, now: 1)
      if snapshot == nil, server.version >= checkpointAt { snapshot = server.checkpoint }
      for reply in replies {
        switch try worker.receive(reply.message) {
        case .finished: return (server, worker)
        case .ignore: break
        case .send(let message), .sendAfter(_, let message):
          outstanding = message
          queue.append(message)
        case .sendEach(let messages):
          queue += messages
          if let last = messages.last { outstanding = last }
        }
      }
    }
    throw RoleError.invalidArgument("the run did not finish")
  }

  @Test(arguments: [(30, 20), (70, 50), (120, 100), (120, 0)])
  func aWorkerRedoesEveryPushTheRestoredServerLacks(crashAt: Int, checkpointAt: Int) throws {
    let total = Self.rows * Self.epochs
    var notices: [String] = []
    let (server, worker) = try runWithACrash(crashAt: crashAt, checkpointAt: checkpointAt) {
      $0.notice = { notices.append($0) }
    }
    #expect(server.gradientsApplied == UInt64(total))
    #expect(worker.pushesApplied == UInt64(total))
    // What the checkpoint lacks, and the push in flight at the crash (when one was).
    let lacking = crashAt - checkpointAt + (crashAt < total ? 1 : 0)
    #expect(worker.pushesRedone == UInt64(lacking))
    // The acknowledged ones are those the crash took; the one in flight never was.
    #expect(
      notices == [
        "server restarted from version \(checkpointAt): redoing \(lacking) pushes (\(crashAt - checkpointAt) of them had been acknowledged)"
      ])
    // The run after the crash applied every push the checkpoint lacked once, and nothing else.
    #expect(server.version == UInt64(total))
  }

  @Test(arguments: [(1, 1), (8, 4), (8, 1)])
  func pipelinedWorkersAndFramesRedoExactlyOnce(pipeline: Int, perFrame: Int) throws {
    let total = Self.rows * Self.epochs
    for (crashAt, checkpointAt) in [(25, 9), (77, 40), (total, 100)] {
      let (server, worker) = try runWithACrash(
        crashAt: crashAt, checkpointAt: checkpointAt, pipeline: pipeline,
        pushesPerFrame: perFrame)
      #expect(server.gradientsApplied == UInt64(total), "crash at \(crashAt)")
      #expect(worker.pushesApplied == UInt64(total), "crash at \(crashAt)")
    }
  }

  /// In sync mode (one worker: a step per push) the pushes redone are steps again.
  @Test func syncWorkersRedoToo() throws {
    let total = Self.rows * Self.epochs
    let (server, worker) = try runWithACrash(crashAt: 77, checkpointAt: 40, mode: .sync)
    #expect(server.gradientsApplied == UInt64(total))
    #expect(server.version == UInt64(total))
    #expect(worker.pushesRedone == 38)
  }

  /// A worker whose last pushes were acknowledged, and whose server then
  /// restarted before the leave, rejoins to redo them instead of leaving.
  @Test func aWorkerLeavingAfterItsWorkRejoinsARestartedServer() throws {
    let total = Self.rows * Self.epochs
    var notices: [String] = []
    let (server, worker) = try runWithACrash(crashAt: total, checkpointAt: total - 7) {
      $0.notice = { notices.append($0) }
    }
    #expect(worker.pushesRedone == 7)
    #expect(
      notices == [
        "server restarted from version \(total - 7): redoing 7 pushes (7 of them had been acknowledged)"
      ])
    #expect(server.gradientsApplied == UInt64(total))
    #expect(worker.resyncs == 1)
  }

  /// With --shuffle, a push redone after the restart carries the rows it had
  /// the first time (its epoch's order, drawn again), and every epoch's pushes
  /// as applied cover the rows exactly once.
  @Test(arguments: [(1, 1, 1), (8, 4, 3), (4, 1, 7)])
  func shuffledPushesAreRedoneWithTheirRows(pipeline: Int, perFrame: Int, batchSize: Int) throws {
    let batchesPerEpoch = (Self.rows + batchSize - 1) / batchSize
    let pushes = Self.epochs * batchesPerEpoch
    for (crashAt, checkpointAt) in [(pushes * 2 / 3, pushes / 4), (pushes / 2, 1)] {
      var rowsBySequence: [UInt64: [Int]] = [:]
      var mismatches = 0
      var repeated = 0
      let (server, worker) = try runWithACrash(
        crashAt: crashAt, checkpointAt: checkpointAt, pipeline: pipeline,
        pushesPerFrame: perFrame, batchSize: batchSize, shuffleSeed: 5,
        sent: { message in
          let pushes: [GradientPush]
          switch message {
          case .push(let push): pushes = [push]
          case .pushes(let many): pushes = many
          default: pushes = []
          }
          for push in pushes {
            if let first = rowsBySequence[push.sequence] {
              repeated += 1
              if first != push.rows { mismatches += 1 }
            } else {
              rowsBySequence[push.sequence] = push.rows
            }
          }
        })
      #expect(server.gradientsApplied == UInt64(pushes), "crash at \(crashAt)")
      #expect(worker.pushesRedone > 0, "crash at \(crashAt)")
      #expect(repeated > 0 && mismatches == 0, "crash at \(crashAt)")
      for epoch in 0..<Self.epochs {
        let first = UInt64(epoch * batchesPerEpoch + 1)
        let rows = (first..<first + UInt64(batchesPerEpoch)).flatMap { rowsBySequence[$0] ?? [] }
        #expect(rows.sorted() == Array(0..<Self.rows), "epoch \(epoch), crash at \(crashAt)")
        #expect(rows != Array(0..<Self.rows), "epoch \(epoch) is shuffled")
      }
    }
  }

  func leasedServer(epochs: UInt64, rows: Int) throws -> ParameterServer {
    let configuration = ServerConfiguration(
      mode: .async, requiredWorkers: 1, optimizer: try OptimizerSettings(learningRate: 0.05),
      model: chain3, initialParameters: ChainModel.seedWeights, leasedEpochs: epochs,
      chunkRows: 4)
    let server = ParameterServer(configuration: configuration)
    let data = try Dataset.generate(rows: rows, seed: 2, noise: 0.1)
    let worker = try WorkerSession(
      workerID: 1, source: .leased, dataset: data, model: ChainModel(layers: 3))
    _ = try runInMemory(server: server, workers: [worker])
    return server
  }

  /// A job checkpointed at its end resumes complete: nothing to lease, and the
  /// server may exit once no worker came back for the longer linger.
  @Test func aFinishedLeasedJobResumesComplete() throws {
    let finished = try leasedServer(epochs: 2, rows: 10)
    #expect(finished.work?.isFinished == true)
    let resumed = try ParameterServer(
      configuration: finished.configuration, resuming: finished.checkpoint)
    #expect(resumed.work?.isComplete == true)
    #expect(resumed.gradientsApplied == 20)
    #expect(resumed.resumeReport.contains("the leased job is complete (2 epochs of 10 rows)"))
    #expect(resumed.status.resume?.jobComplete == true)
    #expect(resumed.status.resume?.rowsToLease == 0)
    #expect(resumed.status.resume?.version == finished.version)
    var watch = LeasedJobWatch(now: 0, lingerMilliseconds: 1000, unseenLingerMilliseconds: 3000)
    #expect(watch.check(resumed, now: 0).done == false)
    #expect(watch.check(resumed, now: 2000).done == false)
    #expect(watch.check(resumed, now: 3000).done == true)
    // A worker that was never told asks and hears that the job is over.
    let peer = PeerID([4, 4])
    _ = resumed.receive(
      .join(
        Join(
          workerID: 5, shard: .whole, model: chain3,
          dataset: DatasetIdentity(rows: 10, fingerprint: finished.checkpoint.dataset!.fingerprint)
        )), from: peer, now: 1)
    #expect(
      resumed.receive(.leaseRequest(workerID: 5), from: peer, now: 1)
        == [Outgoing(to: peer, .noLease(NoLease(finished: true, retryAfterMilliseconds: 0)))])
  }

  /// A resumed job with rows left and no worker says so, once, and does not end.
  @Test func aResumedJobWithRowsLeftAndNoWorkerSaysSo() throws {
    let finished = try leasedServer(epochs: 2, rows: 10)
    var checkpoint = finished.checkpoint
    // Epoch 2 of 2: the first chunk done, 2 rows of the second, none of the third.
    checkpoint.work = .init(epochs: 2, chunkRows: 4, epoch: 1, nextRows: [4, 6, 8])
    let resumed = try ParameterServer(configuration: finished.configuration, resuming: checkpoint)
    #expect(resumed.resumeReport.contains("epoch 2 of 2 has 4 of 10 rows left to lease"))
    #expect(resumed.status.resume?.jobComplete == false)
    #expect(resumed.status.resume?.rowsToLease == 4)
    #expect(resumed.status.resume?.workers.map(\.workerID) == [1])
    var watch = LeasedJobWatch(now: 0, idleNoticeMilliseconds: 5000)
    #expect(watch.check(resumed, now: 4999).notice == nil)
    let check = watch.check(resumed, now: 5000)
    #expect(
      check.notice
        == "epoch 2 of 2 has 4 of 10 rows left to lease and no worker has joined; start workers without --shard"
    )
    #expect(!check.done)
    #expect(watch.check(resumed, now: 60_000).notice == nil)
    #expect(!watch.check(resumed, now: 60_000).done)
  }
}
