import WireProtocol

/// Watches a leased job from outside the server's state machine, for the
/// server command: it says when a job has rows left and no worker to do them
/// (after a resume, typically), and when a finished job may end the process:
/// once no worker has been joined for `lingerMilliseconds` (the workers told
/// "finished" have left), or, when no worker has joined this process at all
/// (it resumed a finished job), for `unseenLingerMilliseconds`, the time a
/// worker that was never told may take to reconnect and ask.
public struct LeasedJobWatch: Sendable {
  /// How long a finished job waits with no worker joined before it ends.
  public let lingerMilliseconds: UInt64
  /// The same when no worker has joined since the server started.
  public let unseenLingerMilliseconds: UInt64
  /// How long a job with rows left waits without workers before it says so.
  public let idleNoticeMilliseconds: UInt64
  private var idleSince: UInt64?
  private var finishedIdleSince: UInt64?
  private var sawWorker = false
  private var noticed = false

  /// A watch; `now` is when the server started serving.
  public init(
    now: UInt64, lingerMilliseconds: UInt64 = 1000, unseenLingerMilliseconds: UInt64 = 10_000,
    idleNoticeMilliseconds: UInt64 = 5000
  ) {
    self.lingerMilliseconds = lingerMilliseconds
    self.unseenLingerMilliseconds = max(lingerMilliseconds, unseenLingerMilliseconds)
    self.idleNoticeMilliseconds = idleNoticeMilliseconds
    idleSince = now
  }

  /// What to do at `now`: a notice to log (once), and whether the job is done
  /// and the server may exit.
  public mutating func check(_ server: ParameterServer, now: UInt64) -> (
    notice: String?, done: Bool
  ) {
    guard let work = server.work else { return (nil, false) }
    let idle = server.joinedWorkers.isEmpty
    if !idle {
      idleSince = nil
      sawWorker = true
      noticed = false
    } else if idleSince == nil {
      idleSince = now
    }
    if work.isComplete {
      guard idle else {
        finishedIdleSince = nil
        return (nil, false)
      }
      let since = finishedIdleSince ?? now
      finishedIdleSince = since
      return (nil, now - since >= (sawWorker ? lingerMilliseconds : unseenLingerMilliseconds))
    }
    // Rows known and left, no worker: after a resume (or when every worker died).
    guard !noticed, work.rows > 0, let since = idleSince, now - since >= idleNoticeMilliseconds
    else {
      return (nil, false)
    }
    noticed = true
    return (
      Self.rowsLeft(server) + " and no worker has joined; start workers without --shard", false
    )
  }

  /// "epoch 3 of 3 has 183 of 3000 rows left to lease" (or that the dataset is
  /// not known yet).
  static func rowsLeft(_ server: ParameterServer) -> String {
    guard let work = server.work else { return "no leased work" }
    guard work.rows > 0 else {
      return
        "epoch \(work.epoch + 1) of \(work.epochs) waits for its first worker (the dataset is not known yet)"
    }
    let left = UInt64(work.rows) - work.rowsApplied
    return
      "epoch \(work.epoch + 1) of \(work.epochs) has \(left) of \(work.rows) rows left to lease"
  }
}

extension ParameterServer {
  /// What a server resumed from a checkpoint restored and what it expects of
  /// the workers, in a line or two for its log.
  public var resumeReport: String {
    let restored = "restored version \(version), \(gradientsApplied) gradients applied"
    if let work {
      if work.isComplete {
        return
          "\(restored): the leased job is complete (\(work.epochs) epochs of \(work.rows) rows); nothing to redo"
      }
      return
        "\(restored): \(LeasedJobWatch.rowsLeft(self)); rows applied after this checkpoint are leased again"
    }
    let kept = resume?.workers ?? []
    guard !kept.isEmpty else { return "\(restored); no worker had pushed yet" }
    let listed = kept.prefix(8).map { "worker \($0.workerID) after push \($0.lastSequence)" }
      .joined(separator: ", ")
    let more = kept.count > 8 ? " and \(kept.count - 8) more workers" : ""
    return
      "\(restored); each worker on a fixed shard redoes its pushes the checkpoint lacks: \(listed)\(more)"
  }
}

extension LeasedWork {
  /// Whether every row of the last epoch is applied (`isFinished` follows at
  /// the next lease request).
  public var isComplete: Bool {
    isFinished || (rows > 0 && epoch + 1 == epochs && rowsApplied == UInt64(rows))
  }
}

extension ResumeStatus {
  /// What `checkpoint` restores, with `work` as restored from it.
  init(restoredFrom checkpoint: ServerCheckpoint, work: LeasedWork?) {
    self.init(
      checkpointFile: "", version: checkpoint.version,
      gradientsApplied: checkpoint.gradientsApplied, jobComplete: work?.isComplete ?? false,
      rowsToLease: work.map { UInt64($0.rows) - $0.rowsApplied } ?? 0,
      workers: checkpoint.sequences.map {
        KnownWorker(workerID: $0.workerID, lastSequence: $0.sequence)
      })
  }
}
