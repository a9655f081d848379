// Quarantine: the workers a server stopped taking gradients from after a
// confirmed failed audit, and the rollbacks that undid their work, as `status`
// carries them.

/// One quarantined worker: which push failed which check, and what was undone.
public struct QuarantinedWorker: Equatable, Sendable {
  /// The worker.
  public var workerID: UInt32
  /// The push whose confirmed audit failed.
  public var sequence: UInt64
  /// The checks that failed.
  public var failedChecks: AuditChecks
  /// The audit's largest relative error (finite differences).
  public var maximumRelativeError: Double
  /// Coordinates the replay found different.
  public var replayMismatches: UInt64
  /// The server's version when the worker was quarantined.
  public var quarantinedAtVersion: UInt64
  /// The version of the snapshot the parameters returned to (nil: no rollback).
  public var rolledBackTo: UInt64?

  /// A quarantined worker.
  public init(
    workerID: UInt32, sequence: UInt64, failedChecks: AuditChecks, maximumRelativeError: Double,
    replayMismatches: UInt64, quarantinedAtVersion: UInt64, rolledBackTo: UInt64?
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.failedChecks = failedChecks
    self.maximumRelativeError = maximumRelativeError
    self.replayMismatches = replayMismatches
    self.quarantinedAtVersion = quarantinedAtVersion
    self.rolledBackTo = rolledBackTo
  }
}

/// The server's quarantine: whether it acts on confirmed failures, whom it
/// quarantined, and how much it rolled back.
public struct QuarantineReport: Equatable, Sendable {
  /// Most quarantined workers listed in one status.
  public static let maximumListed = 256

  /// Whether the server was started with `--quarantine`.
  public var enabled: Bool
  /// Quarantined workers, in the order they were quarantined (at most 256).
  public var workers: [QuarantinedWorker]
  /// Rollbacks made.
  public var rollbacks: UInt64
  /// Versions undone by them, in total.
  public var versionsRolledBack: UInt64

  /// A quarantine report.
  public init(
    enabled: Bool, workers: [QuarantinedWorker] = [], rollbacks: UInt64 = 0,
    versionsRolledBack: UInt64 = 0
  ) {
    self.enabled = enabled
    self.workers = workers
    self.rollbacks = rollbacks
    self.versionsRolledBack = versionsRolledBack
  }

  /// Quarantine off, nothing quarantined.
  public static let disabled = QuarantineReport(enabled: false)
}

extension QuarantinedWorker {
  /// `u32 worker id`, `u64 sequence`, `u8 failed checks`, `f64 largest relative
  /// error`, `u64 replay mismatches`, `u64 quarantined-at version`, `u8 rolled
  /// back`, `u64 rolled back to` (0 when not rolled back).
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(sequence)
    sink.write(failedChecks.rawValue)
    sink.write(maximumRelativeError)
    sink.write(replayMismatches)
    sink.write(quarantinedAtVersion)
    sink.write(UInt8(rolledBackTo == nil ? 0 : 1))
    sink.write(rolledBackTo ?? 0)
  }

  /// Bytes of one record as `encode(into:)` writes it.
  static let encodedSize = 4 + 8 + 1 + 8 + 8 + 8 + 1 + 8

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> QuarantinedWorker {
    let worker = try reader.read(UInt32.self, "quarantined worker id")
    let sequence = try reader.read(UInt64.self, "quarantined sequence")
    let checks = try reader.read(UInt8.self, "quarantined failed checks")
    guard checks != 0, AuditChecks.all.isSuperset(of: AuditChecks(rawValue: checks)) else {
      throw .outOfRange(
        field: "quarantined failed checks", value: String(checks),
        allowed: "bits 1 (finite differences) and 2 (replay), at least one")
    }
    let error = try reader.readNonNegative("quarantined relative error")
    let mismatches = try reader.read(UInt64.self, "quarantined replay mismatches")
    let at = try reader.read(UInt64.self, "quarantined-at version")
    let rolledBack = try reader.readFlag("rolled back")
    let to = try reader.read(UInt64.self, "rolled back to")
    guard to <= at else {
      throw .invalid(
        field: "rolled back to", reason: "version \(to) is after the quarantine at \(at)")
    }
    return QuarantinedWorker(
      workerID: worker, sequence: sequence, failedChecks: AuditChecks(rawValue: checks),
      maximumRelativeError: error, replayMismatches: mismatches, quarantinedAtVersion: at,
      rolledBackTo: rolledBack ? to : nil)
  }
}

extension QuarantineReport {
  /// `u8 enabled`, `u32 count`, the records, `u64 rollbacks`, `u64 versions rolled back`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(UInt8(enabled ? 1 : 0))
    let listed = workers.prefix(Self.maximumListed)
    sink.write(UInt32(listed.count))
    for worker in listed { worker.encode(into: &sink) }
    sink.write(rollbacks)
    sink.write(versionsRolledBack)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> QuarantineReport {
    let enabled = try reader.readFlag("quarantine enabled")
    let count = Int(try reader.read(UInt32.self, "quarantined count"))
    guard count <= maximumListed, count <= reader.remaining / QuarantinedWorker.encodedSize else {
      throw .outOfRange(
        field: "quarantined count", value: String(count),
        allowed: "at most \(maximumListed) and what fits")
    }
    var workers: [QuarantinedWorker] = []
    for _ in 0..<count { workers.append(try QuarantinedWorker.decode(from: &reader)) }
    let rollbacks = try reader.read(UInt64.self, "rollbacks")
    let versions = try reader.read(UInt64.self, "versions rolled back")
    return QuarantineReport(
      enabled: enabled, workers: workers, rollbacks: rollbacks, versionsRolledBack: versions)
  }
}
