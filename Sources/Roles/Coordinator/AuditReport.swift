import TrainingMath
import WireProtocol

/// The audit of one applied gradient: which gradient, and how it compared.
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
  /// The comparisons.
  public var audit: GradientAudit

  /// Audits `record` with `tolerance`, reading its rows from `dataset`, which
  /// must be the data the workers read (same rows and fingerprint). The random
  /// direction is seeded by the worker and sequence, so the same record always
  /// gets the same audit.
  public static func audit(_ record: AuditRecord, tolerance: Double, dataset: Dataset)
    throws(RoleError) -> AuditReport
  {
    let identity = DatasetIdentity(rows: UInt64(dataset.count), fingerprint: dataset.fingerprint)
    guard identity == record.dataset else {
      throw .invalidArgument(
        "the coordinator reads \(identity), the workers read \(record.dataset): give the coordinator the workers' data file (--data)"
      )
    }
    let model = try ModelCatalog.model(
      for: ModelDescriptor(name: record.modelName, layout: record.weights.layout))
    return audit(record, model: model, tolerance: tolerance, dataset: dataset)
  }

  private static func audit(
    _ record: AuditRecord, model: some DifferentiableModel, tolerance: Double, dataset: Dataset
  ) -> AuditReport {
    // A gradient that travelled as Float32 was rounded to it: that is noise, not error.
    let auditor = GradientAuditor(
      model: model, tolerance: tolerance,
      gradientRounding: record.gradient.layout.hasFloat32 ? ElementType.float32.unitRoundoff : 0)
    let seed = (UInt64(record.workerID) << 40) ^ record.sequence
    let audit = auditor.audit(
      weights: record.weights.values, dataset: dataset, rows: record.rows,
      gradient: record.gradient.values, seed: seed)
    return AuditReport(
      workerID: record.workerID, sequence: record.sequence,
      computedAtVersion: record.computedAtVersion, appliedAtVersion: record.appliedAtVersion,
      sampleRows: record.rows, audit: audit)
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
  /// when nothing could be measured above rounding noise.
  public var text: String {
    let verdict = !audit.passed ? "FAIL " : (audit.isConclusive ? "ok   " : "noise")
    let figure =
      audit.isConclusive
      ? "max rel err \(Self.format(audit.maximumRelativeError))"
      : Self.belowRoundingNoise(magnitude: audit.gradientMagnitude)
    var line =
      "audit \(verdict) worker \(workerID) push \(sequence) at v\(computedAtVersion): \(figure), \(audit.coordinates.count) coordinates + 1 direction"
    for comparison in audit.comparisons where !comparison.passed {
      line +=
        "\n  \(comparison.label): gradient \(comparison.analytic) vs finite difference \(comparison.numeric) (rel err \(Self.format(comparison.relativeError)))"
    }
    return line
  }

  /// One JSON object for machines.
  public var json: String {
    let comparisons = audit.comparisons.map { comparison in
      "{\"label\":\(JSON.string(comparison.label)),\"analytic\":\(JSON.number(comparison.analytic)),"
        + "\"numeric\":\(JSON.number(comparison.numeric)),\"relative_error\":\(JSON.number(comparison.relativeError)),"
        + "\"noise_bound\":\(JSON.number(comparison.noiseBound)),\"passed\":\(comparison.passed),"
        + "\"conclusive\":\(comparison.isConclusive)}"
    }
    return "{\"type\":\"audit\",\"worker\":\(workerID),\"sequence\":\(sequence),"
      + "\"computed_at\":\(computedAtVersion),\"applied_at\":\(appliedAtVersion),"
      + "\"samples\":[\(sampleRows.map(String.init).joined(separator: ","))],"
      + "\"passed\":\(audit.passed),\"conclusive\":\(audit.isConclusive),"
      + "\"max_relative_error\":\(JSON.number(audit.maximumRelativeError)),"
      + "\"raw_max_relative_error\":\(JSON.number(audit.maximumRawRelativeError)),"
      + "\"gradient_magnitude\":\(JSON.number(audit.gradientMagnitude)),"
      + "\"detectable_relative_error\":\(JSON.number(audit.smallestDetectableRelativeError)),"
      + "\"comparisons\":[\(comparisons.joined(separator: ","))]}"
  }

  static func format(_ value: Double) -> String {
    value == 0 ? "0" : String(describing: Float(value))
  }
}

/// Running totals over many audits, as the coordinator and `pstrain train` report them.
public struct AuditTally: Equatable, Sendable {
  /// Gradients audited.
  public var count = 0
  /// Audits that failed.
  public var failed = 0
  /// Audits whose every comparison was below rounding noise.
  public var inconclusive = 0
  /// Largest conclusive relative error seen.
  public var maximumRelativeError = 0.0
  /// Largest gradient among the audits below rounding noise (their size).
  public var largestGradientBelowNoise = 0.0
  /// Workers whose gradients failed an audit.
  public var failedWorkers: Set<UInt32> = []
  /// Workers audited conclusively.
  public var conclusiveWorkers: Set<UInt32> = []

  /// An empty tally.
  public init() {}

  /// Adds one report.
  public mutating func add(_ report: AuditReport) {
    count += 1
    if !report.audit.passed {
      failed += 1
      failedWorkers.insert(report.workerID)
    }
    if report.audit.isConclusive {
      conclusiveWorkers.insert(report.workerID)
      maximumRelativeError = max(maximumRelativeError, report.audit.maximumRelativeError)
    } else {
      inconclusive += 1
      largestGradientBelowNoise = max(largestGradientBelowNoise, report.audit.gradientMagnitude)
    }
  }

  /// The tally as a JSON object.
  public var json: String {
    "{\"count\":\(count),\"failed\":\(failed),\"inconclusive\":\(inconclusive),"
      + "\"max_relative_error\":\(JSON.number(maximumRelativeError)),"
      + "\"failed_workers\":[\(failedWorkers.sorted().map(String.init).joined(separator: ","))]}"
  }
}
