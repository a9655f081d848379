import TrainingMath
import WireProtocol

/// The audit of one applied gradient: which gradient, and how it compared, by
/// each check run: finite differences of the loss, a replay of the same code.
public struct AuditReport: Equatable, Sendable {
  /// The worker that computed the gradient.
  public var workerID: UInt32
  /// Its push sequence number.
  public var sequence: UInt64
  /// The weights version it was computed at.
  public var computedAtVersion: UInt64
  /// The version its application produced.
  public var appliedAtVersion: UInt64
  /// Row numbers of the samples.
  public var sampleRows: [Int]
  /// The comparisons with finite differences (nil: not run).
  public var audit: GradientAudit?
  /// The replay's comparison (nil: not run).
  public var replay: ReplayComparison?
  /// The second look at a failure (nil when nothing failed, or no second look was taken).
  public var secondLook: SecondLook?

  /// A second look at a failed audit, before it is reported as confirmed: each
  /// failed check run again, the replay in a fresh workspace, the finite
  /// differences with a fresh seed (other coordinates, another direction).
  public struct SecondLook: Equatable, Sendable {
    /// The finite differences again (nil when they had not failed).
    public var audit: GradientAudit?
    /// The replay again (nil when it had not failed).
    public var replay: ReplayComparison?

    /// The checks that failed again.
    public var failedChecks: AuditChecks { AuditReport.failedChecks(audit: audit, replay: replay) }
  }

  /// The checks that failed.
  public var failedChecks: AuditChecks { Self.failedChecks(audit: audit, replay: replay) }

  /// The checks of those run (non-nil) that failed.
  static func failedChecks(audit: GradientAudit?, replay: ReplayComparison?) -> AuditChecks {
    var failed: AuditChecks = []
    if let audit, !audit.passed { failed.insert(.finiteDifferences) }
    if let replay, !replay.passed { failed.insert(.replay) }
    return failed
  }

  /// The checks that were run.
  public var checksRun: AuditChecks {
    var run: AuditChecks = []
    if audit != nil { run.insert(.finiteDifferences) }
    if replay != nil { run.insert(.replay) }
    return run
  }

  /// Whether every check run passed.
  public var passed: Bool { failedChecks.isEmpty }

  /// Whether a failure was seen again by the second look: what a server with
  /// `--quarantine` acts on.
  public var confirmed: Bool { !(secondLook?.failedChecks.isEmpty ?? true) }

  /// Whether the finite differences ran and measured something above rounding noise.
  public var isConclusive: Bool { audit?.isConclusive ?? false }

  /// Coordinates the replay found different (0 when it agreed or did not run).
  public var replayMismatches: Int { replay?.mismatchCount ?? 0 }

  /// Audits `record` by `checks`, finite differences with `tolerance` and the
  /// replay by `replayMode`, reading its rows from `dataset`, which must be the
  /// data the workers read (same rows and fingerprint). The random direction is
  /// seeded by the worker and sequence, so the same record always gets the same
  /// audit. With `confirm`, a failure gets a second look (`SecondLook`).
  public static func audit(
    _ record: AuditRecord, checks: AuditChecks = .all, tolerance: Double,
    replayMode: ReplayMode = .exact, confirm: Bool = true, dataset: Dataset
  ) throws(RoleError) -> AuditReport {
    let identity = DatasetIdentity(rows: UInt64(dataset.count), fingerprint: dataset.fingerprint)
    guard identity == record.dataset else {
      throw .invalidArgument(
        "the coordinator reads \(identity), the workers read \(record.dataset): give the coordinator the workers' data file (--data)"
      )
    }
    let model = try ModelCatalog.model(
      for: ModelDescriptor(name: record.modelName, layout: record.weights.layout))
    return audit(
      record, model: model,
      settings: Settings(
        checks: checks, tolerance: tolerance, replayMode: replayMode, confirm: confirm),
      dataset: dataset)
  }

  /// What `audit` was asked to do.
  private struct Settings {
    var checks: AuditChecks
    var tolerance: Double
    var replayMode: ReplayMode
    var confirm: Bool
  }

  /// The seed of an audit's random direction and coordinates: a function of
  /// the worker and the sequence, so the same record always gets the same audit.
  static func seed(of record: AuditRecord) -> UInt64 {
    (UInt64(record.workerID) << 40) ^ record.sequence
  }

  /// The seed of the second look's finite differences: fresh coordinates and a
  /// fresh direction, still a function of the record alone.
  static func secondLookSeed(of record: AuditRecord) -> UInt64 {
    var generator = SplitMix64(seed: seed(of: record) ^ 0x7365_636F_6E64_4C6B)  // "secondLk"
    return generator.next()
  }

  private static func audit(
    _ record: AuditRecord, model: some DifferentiableModel, settings: Settings, dataset: Dataset
  ) -> AuditReport {
    // A gradient that travelled as Float32 was rounded to it: that is noise, not error.
    let auditor = GradientAuditor(
      model: model, tolerance: settings.tolerance,
      gradientRounding: record.gradient.layout.hasFloat32 ? ElementType.float32.unitRoundoff : 0)
    let replay = GradientReplay(model: model, mode: settings.replayMode)
    func differences(seed: UInt64) -> GradientAudit {
      auditor.audit(
        weights: record.weights.values, dataset: dataset, rows: record.rows,
        gradient: record.gradient.values, seed: seed)
    }
    func replayed() -> ReplayComparison {
      replay.replay(
        weights: record.weights.values, dataset: dataset, rows: record.rows,
        gradient: record.gradient.values)
    }
    var report = AuditReport(
      workerID: record.workerID, sequence: record.sequence,
      computedAtVersion: record.computedAtVersion, appliedAtVersion: record.appliedAtVersion,
      sampleRows: record.rows,
      audit: settings.checks.contains(.finiteDifferences)
        ? differences(seed: seed(of: record)) : nil,
      replay: settings.checks.contains(.replay) ? replayed() : nil)
    let failed = report.failedChecks
    if settings.confirm, !failed.isEmpty {
      report.secondLook = SecondLook(
        audit: failed.contains(.finiteDifferences)
          ? differences(seed: secondLookSeed(of: record)) : nil,
        replay: failed.contains(.replay) ? replayed() : nil)
    }
    return report
  }

  /// What an audit whose every comparison was below rounding noise says: the
  /// gradient (`magnitude`, its largest derivative) has shrunk to the size of
  /// its own rounding error, as it does once a run has converged.
  public static func belowRoundingNoise(magnitude: Double) -> String {
    "below rounding noise (the gradients are \(approximately(magnitude)): nothing left to audit)"
  }

  /// `value` to one significant digit: "~1e-15", or "0".
  public static func approximately(_ value: Double) -> String {
    value == 0 ? "0" : "~" + String(format: "%.0e", value)
  }

  /// One line for people: "ok" with the relative error, "FAIL", or "noise"
  /// when the finite differences measured nothing above rounding noise; then
  /// the replay's verdict, and a line per failed comparison and check.
  public var text: String {
    let verdict = !passed ? "FAIL " : (audit.map { $0.isConclusive ? "ok   " : "noise" } ?? "ok   ")
    var figures: [String] = []
    if let audit {
      figures.append(
        (audit.isConclusive
          ? "max rel err \(Self.format(audit.maximumRelativeError))"
          : Self.belowRoundingNoise(magnitude: audit.gradientMagnitude))
          + ", \(audit.coordinates.count) coordinates + 1 direction")
    }
    if let replay { figures.append(Self.replaySummary(replay)) }
    var line =
      "audit \(verdict) worker \(workerID) push \(sequence) at v\(computedAtVersion): "
      + (figures.isEmpty ? "no check run" : figures.joined(separator: "; "))
    if let audit, !audit.passed {
      line += "\n  FAIL finite differences:"
      for comparison in audit.comparisons where !comparison.passed {
        line +=
          "\n  \(comparison.label): gradient \(comparison.analytic) vs finite difference \(comparison.numeric) (rel err \(Self.format(comparison.relativeError)))"
      }
    }
    if let replay, !replay.passed { line += "\n  FAIL replay: " + Self.replayFailure(replay) }
    if !passed {
      if let secondLook {
        let again = secondLook.failedChecks
        line +=
          again.isEmpty
          ? "\n  not confirmed: a second look (\(failedChecks)) passed"
          : "\n  confirmed: a second look failed again (\(again))"
      } else {
        line += "\n  not confirmed: no second look taken"
      }
    }
    return line
  }

  /// One JSON object for machines: the finite differences' figures at the top
  /// level as before (0 and no comparisons when they did not run), `checks` run,
  /// `failed_checks`, a `replay` object (null when it did not run) and `confirmed`.
  public var json: String {
    let comparisons = (audit?.comparisons ?? []).map { comparison in
      "{\"label\":\(JSON.string(comparison.label)),\"analytic\":\(JSON.number(comparison.analytic)),"
        + "\"numeric\":\(JSON.number(comparison.numeric)),\"relative_error\":\(JSON.number(comparison.relativeError)),"
        + "\"noise_bound\":\(JSON.number(comparison.noiseBound)),\"passed\":\(comparison.passed),"
        + "\"conclusive\":\(comparison.isConclusive)}"
    }
    return "{\"type\":\"audit\",\"worker\":\(workerID),\"sequence\":\(sequence),"
      + "\"computed_at\":\(computedAtVersion),\"applied_at\":\(appliedAtVersion),"
      + "\"samples\":[\(sampleRows.map(String.init).joined(separator: ","))],"
      + "\"passed\":\(passed),\"conclusive\":\(isConclusive),"
      + "\"checks\":\(Self.jsonNames(checksRun)),\"failed_checks\":\(Self.jsonNames(failedChecks)),"
      + "\"confirmed\":\(confirmed),"
      + "\"second_look_failed_checks\":\(secondLook.map { Self.jsonNames($0.failedChecks) } ?? "null"),"
      + "\"max_relative_error\":\(JSON.number(audit?.maximumRelativeError ?? 0)),"
      + "\"raw_max_relative_error\":\(JSON.number(audit?.maximumRawRelativeError ?? 0)),"
      + "\"gradient_magnitude\":\(JSON.number(audit?.gradientMagnitude ?? 0)),"
      + "\"detectable_relative_error\":\(JSON.number(audit?.smallestDetectableRelativeError ?? .infinity)),"
      + "\"comparisons\":[\(comparisons.joined(separator: ","))],"
      + "\"replay\":\(replay.map(Self.json) ?? "null")}"
  }

  static func format(_ value: Double) -> String {
    value == 0 ? "0" : String(describing: Float(value))
  }
}

/// Running totals over many audits, as the coordinator and `pstrain train` report them.
public struct AuditTally: Equatable, Sendable {
  /// Gradients audited.
  public var count = 0
  /// Audits that failed (any check).
  public var failed = 0
  /// Audits whose finite differences failed.
  public var failedFiniteDifferences = 0
  /// Audits whose replay failed.
  public var failedReplays = 0
  /// Gradients replayed.
  public var replayed = 0
  /// Failures a second look confirmed.
  public var confirmed = 0
  /// Audits whose finite differences were all below rounding noise.
  public var inconclusive = 0
  /// Largest conclusive relative error seen.
  public var maximumRelativeError = 0.0
  /// Largest gradient among the audits below rounding noise (their size).
  public var largestGradientBelowNoise = 0.0
  /// Workers whose gradients failed an audit.
  public var failedWorkers: Set<UInt32> = []
  /// Workers audited conclusively by finite differences.
  public var conclusiveWorkers: Set<UInt32> = []

  /// An empty tally.
  public init() {}

  /// Adds one report.
  public mutating func add(_ report: AuditReport) {
    count += 1
    let failedChecks = report.failedChecks
    if !failedChecks.isEmpty {
      failed += 1
      failedWorkers.insert(report.workerID)
    }
    if failedChecks.contains(.finiteDifferences) { failedFiniteDifferences += 1 }
    if failedChecks.contains(.replay) { failedReplays += 1 }
    if report.replay != nil { replayed += 1 }
    if report.confirmed { confirmed += 1 }
    guard let audit = report.audit else { return }
    if audit.isConclusive {
      conclusiveWorkers.insert(report.workerID)
      maximumRelativeError = max(maximumRelativeError, audit.maximumRelativeError)
    } else {
      inconclusive += 1
      largestGradientBelowNoise = max(largestGradientBelowNoise, audit.gradientMagnitude)
    }
  }

  /// "3 failed (finite differences 1, replay 2; 2 confirmed)", or "0 failed".
  public var failuresText: String {
    guard failed > 0 else { return "0 failed" }
    return
      "\(failed) failed (finite differences \(failedFiniteDifferences), replay \(failedReplays); \(confirmed) confirmed)"
  }

  /// The tally as a JSON object.
  public var json: String {
    "{\"count\":\(count),\"failed\":\(failed),\"inconclusive\":\(inconclusive),"
      + "\"failed_checks\":{\"finite_differences\":\(failedFiniteDifferences),\"replay\":\(failedReplays)},"
      + "\"replayed\":\(replayed),\"confirmed\":\(confirmed),"
      + "\"max_relative_error\":\(JSON.number(maximumRelativeError)),"
      + "\"failed_workers\":[\(failedWorkers.sorted().map(String.init).joined(separator: ","))]}"
  }
}
