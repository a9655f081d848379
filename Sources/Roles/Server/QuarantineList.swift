import WireProtocol

/// How a server started with `--quarantine` keeps the states it may roll back to.
public struct QuarantinePolicy: Equatable, Sendable {
  /// Versions between rollback snapshots.
  public var snapshotEvery: UInt64
  /// Bytes of rollback snapshots kept at most (but always two): past it, the
  /// server keeps fewer snapshots and may roll back further than needed.
  public var snapshotByteBudget: Int

  /// Snapshots every 100 versions, within 256 MiB.
  public static let defaultSnapshotEvery: UInt64 = 100
  /// 256 MiB.
  public static let defaultSnapshotByteBudget = 256 << 20

  /// A policy; `snapshotEvery` is at least 1.
  public init(
    snapshotEvery: UInt64 = defaultSnapshotEvery,
    snapshotByteBudget: Int = defaultSnapshotByteBudget
  ) {
    self.snapshotEvery = max(1, snapshotEvery)
    self.snapshotByteBudget = max(0, snapshotByteBudget)
  }
}

/// The workers a server quarantined, the counters of what it rolled back, and,
/// per worker, the audited pushes with the version their application produced
/// on this server (so that a verdict, which names a push by its sequence,
/// finds this server's version: with server shards each has its own).
///
/// A class, so that the server updates it in place.
final class QuarantineList {
  /// Audited pushes remembered per worker (the newest).
  static let auditedPerWorker = 64

  /// The quarantined workers, in the order they were quarantined.
  private(set) var workers: [QuarantinedWorker] = []
  /// Their ids, for the check of every message.
  private(set) var ids: Set<UInt32> = []
  /// Rollbacks made, and the versions they undid in total.
  var rollbacks: UInt64 = 0
  var versionsRolledBack: UInt64 = 0
  /// Per worker, its audited pushes: (sequence, version its application produced), oldest first.
  private var audited: [UInt32: [(sequence: UInt64, version: UInt64)]] = [:]

  /// Whether `worker` is quarantined.
  func contains(_ worker: UInt32) -> Bool { ids.contains(worker) }

  /// The quarantined record of `worker`.
  func record(of worker: UInt32) -> QuarantinedWorker? {
    workers.first { $0.workerID == worker }
  }

  /// Quarantines as `record` says (once per worker).
  func add(_ record: QuarantinedWorker) {
    guard ids.insert(record.workerID).inserted else { return }
    workers.append(record)
    audited[record.workerID] = nil
  }

  /// An audit record was sent of `worker`'s push `sequence`, whose application
  /// produced `version`.
  func audited(_ worker: UInt32, sequence: UInt64, version: UInt64) {
    var list = audited[worker] ?? []
    list.append((sequence, version))
    if list.count > Self.auditedPerWorker { list.removeFirst(list.count - Self.auditedPerWorker) }
    audited[worker] = list
  }

  /// The version the application of `worker`'s audited push `sequence`
  /// produced here, if it is remembered.
  func version(of worker: UInt32, sequence: UInt64) -> UInt64? {
    audited[worker]?.last { $0.sequence == sequence }?.version
  }

  /// The report `status` carries.
  func report(enabled: Bool) -> QuarantineReport {
    QuarantineReport(
      enabled: enabled, workers: Array(workers.prefix(QuarantineReport.maximumListed)),
      rollbacks: rollbacks, versionsRolledBack: versionsRolledBack)
  }

  /// Why `worker`'s messages are refused: "worker 3 is quarantined: its push
  /// 812 failed the replay (4 coordinates differ), confirmed; this server
  /// takes nothing more from it".
  static func refusal(_ record: QuarantinedWorker) -> String {
    let rolledBack = record.rolledBackTo.map { ", rolled back to version \($0)" } ?? ""
    return
      "worker \(record.workerID) is quarantined: its push \(record.sequence) failed \(record.failureText), confirmed\(rolledBack); this server takes nothing more from it"
  }

}

extension QuarantinedWorker {
  /// What failed, in words: "the replay (4 coordinates differ)", "the finite
  /// differences (relative error 0.5)".
  public var failureText: String {
    var details: [String] = []
    if failedChecks.contains(.finiteDifferences) {
      details.append("relative error \(maximumRelativeError)")
    }
    if failedChecks.contains(.replay) {
      details.append(
        replayMismatches == 1 ? "1 coordinate differs" : "\(replayMismatches) coordinates differ")
    }
    return "the \(failedChecks) (\(details.joined(separator: ", ")))"
  }
}
