import TrainingMath

// Audits: the coordinator's subscription (`audit-subscribe`, `subscription`),
// the records the server sends it (`audit-record`), and its verdicts
// (`audit-result`, which `status` carries too).

/// A coordinator's request for audit records.
public struct AuditSubscription: Equatable, Sendable {
  /// Send a record for gradients computed at every version that is a multiple
  /// of `every`; 0 ends the subscription, `noPeriods` (2^64 − 1) asks for
  /// sampled pushes only.
  public var every: UInt64
  /// The subscription lapses unless renewed within this many milliseconds.
  public var leaseMilliseconds: UInt32
  /// Besides every `every` versions, audit each applied push with this
  /// probability (0 to 1), drawn per push, so every worker is sampled at the
  /// same rate whatever its speed; 0 samples none (periods only).
  public var probability: Double
  /// Seeds the draw, which is a function of the seed, the worker and the push's
  /// sequence number only: server shards given the same subscription audit the
  /// same pushes, so their parts of each record join.
  public var seed: UInt64

  /// A subscription request.
  public init(every: UInt64, leaseMilliseconds: UInt32, probability: Double = 0, seed: UInt64 = 0) {
    self.every = every
    self.leaseMilliseconds = leaseMilliseconds
    self.probability = probability
    self.seed = seed
  }
}

/// The server's answer to a subscription request. Every record sent to the
/// subscriber before this answer arrives before it (one connection is FIFO).
public struct SubscriptionState: Equatable, Sendable {
  /// The period in force (0: no longer subscribed).
  public var every: UInt64
  /// Records sent so far on this subscription.
  public var recordsSent: UInt64
  /// Records that could not be queued to the subscriber.
  public var recordsDropped: UInt64

  /// A subscription state.
  public init(every: UInt64, recordsSent: UInt64, recordsDropped: UInt64) {
    self.every = every
    self.recordsSent = recordsSent
    self.recordsDropped = recordsDropped
  }
}

/// A gradient the server applied, with everything needed to re-check it.
public struct AuditRecord: Equatable, Sendable {
  /// The worker that computed it.
  public var workerID: UInt32
  /// Its sequence number.
  public var sequence: UInt64
  /// The version of `weights`, which the worker claimed to compute at.
  public var computedAtVersion: UInt64
  /// The version the server reached by applying it.
  public var appliedAtVersion: UInt64
  /// The model name.
  public var modelName: String
  /// The server's weights at `computedAtVersion`.
  public var weights: NamedTensors
  /// The data the run reads (row count and fingerprint): the auditor reads
  /// the rows from its own copy, and checks it is the same.
  public var dataset: DatasetIdentity
  /// The dataset rows the gradient is of.
  public var rows: [Int]
  /// The gradient as pushed.
  public var gradient: NamedTensors

  /// An audit record.
  public init(
    workerID: UInt32, sequence: UInt64, computedAtVersion: UInt64, appliedAtVersion: UInt64,
    modelName: String, weights: NamedTensors, dataset: DatasetIdentity, rows: [Int],
    gradient: NamedTensors
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.computedAtVersion = computedAtVersion
    self.appliedAtVersion = appliedAtVersion
    self.modelName = modelName
    self.weights = weights
    self.dataset = dataset
    self.rows = rows
    self.gradient = gradient
  }
}

/// The checks an audit makes of a gradient, as a set (`failedChecks`).
public struct AuditChecks: OptionSet, Equatable, Hashable, Sendable, CustomStringConvertible {
  public let rawValue: UInt8
  /// Builds the set from its bits.
  public init(rawValue: UInt8) { self.rawValue = rawValue }

  /// The gradient against central finite differences of the loss.
  public static let finiteDifferences = AuditChecks(rawValue: 1)
  /// The gradient against the same code rerun at the same weights and rows.
  public static let replay = AuditChecks(rawValue: 2)
  /// Every check this build knows.
  public static let all: AuditChecks = [.finiteDifferences, .replay]

  /// "finite differences", "replay", "finite differences+replay" or "none".
  public var description: String {
    var names: [String] = []
    if contains(.finiteDifferences) { names.append("finite differences") }
    if contains(.replay) { names.append("replay") }
    return names.isEmpty ? "none" : names.joined(separator: "+")
  }
}

/// The verdict of one audit, as the coordinator reports it to the server.
public struct AuditResult: Equatable, Sendable {
  /// The audited worker.
  public var workerID: UInt32
  /// Its push.
  public var sequence: UInt64
  /// Whether the gradient passed every check made.
  public var passed: Bool
  /// The audit's largest relative error.
  public var maximumRelativeError: Double
  /// Whether any comparison was above rounding noise; when none was (a
  /// converged run), the relative error measures the arithmetic, not the gradient.
  public var conclusive: Bool
  /// The size of the audited gradient (its largest derivative compared).
  public var gradientMagnitude: Double
  /// The version the audited push's application produced (0: not known).
  public var appliedAtVersion: UInt64
  /// The checks that failed (empty when it passed; by default, the finite
  /// differences when it failed).
  public var failedChecks: AuditChecks
  /// Coordinates the replay found different (0 when it agreed or did not run).
  public var replayMismatches: UInt64
  /// Whether a failure was confirmed by a second look (a second replay or a fresh
  /// direction): a server started with `--quarantine` quarantines the worker on it.
  public var confirmed: Bool

  /// A verdict.
  public init(
    workerID: UInt32, sequence: UInt64, passed: Bool, maximumRelativeError: Double,
    conclusive: Bool = true, gradientMagnitude: Double = 0, appliedAtVersion: UInt64 = 0,
    failedChecks: AuditChecks? = nil, replayMismatches: UInt64 = 0, confirmed: Bool = false
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.passed = passed
    self.maximumRelativeError = maximumRelativeError
    self.conclusive = conclusive
    self.gradientMagnitude = gradientMagnitude
    self.appliedAtVersion = appliedAtVersion
    // Before replays, a failure was a failure of the finite differences.
    self.failedChecks = failedChecks ?? (passed ? [] : .finiteDifferences)
    self.replayMismatches = replayMismatches
    self.confirmed = confirmed
  }
}

extension AuditSubscription {
  /// `u64 every`, `u32 lease ms`, `f64 probability` (0 to 1), `u64 seed`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(every)
    sink.write(leaseMilliseconds)
    sink.write(probability)
    sink.write(seed)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> AuditSubscription {
    let every = try reader.read(UInt64.self, "every")
    let lease = try reader.read(UInt32.self, "lease")
    let probability = try reader.readNonNegative("probability")
    guard probability <= 1 else {
      throw .outOfRange(field: "probability", value: "\(probability)", allowed: "0 to 1")
    }
    let seed = try reader.read(UInt64.self, "seed")
    return AuditSubscription(
      every: every, leaseMilliseconds: lease, probability: probability, seed: seed)
  }
}

extension SubscriptionState {
  /// `u64 every`, `u64 records sent`, `u64 records dropped`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(every)
    sink.write(recordsSent)
    sink.write(recordsDropped)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> SubscriptionState {
    let every = try reader.read(UInt64.self, "every")
    let sent = try reader.read(UInt64.self, "records sent")
    let dropped = try reader.read(UInt64.self, "records dropped")
    return SubscriptionState(every: every, recordsSent: sent, recordsDropped: dropped)
  }
}

extension AuditRecord {
  /// `u32 worker id`, `u64 sequence`, `u64 computed-at version`, `u64 applied-at
  /// version`, model name, weights tensors, `u64 dataset rows`, `u64 dataset
  /// fingerprint`, rows, gradient tensors.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(sequence)
    sink.write(computedAtVersion)
    sink.write(appliedAtVersion)
    sink.write(modelName, lengthAs: UInt8.self)
    weights.encode(into: &sink)
    sink.write(dataset.rows)
    sink.write(dataset.fingerprint)
    RowNumbers.encode(rows, into: &sink)
    gradient.encode(into: &sink)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> AuditRecord {
    let workerID = try reader.read(UInt32.self, "worker id")
    let sequence = try reader.read(UInt64.self, "sequence")
    let computedAt = try reader.read(UInt64.self, "computed-at version")
    let appliedAt = try reader.read(UInt64.self, "applied-at version")
    let modelName = try reader.readName("model name")
    let weights = try NamedTensors.decode(from: &reader, "weights")
    let datasetRows = try reader.read(UInt64.self, "dataset rows")
    let fingerprint = try reader.read(UInt64.self, "dataset fingerprint")
    var rows: [Int] = []
    try RowNumbers.decode(from: &reader, into: &rows)
    guard let highest = rows.max(), UInt64(highest) < datasetRows else {
      throw .invalid(field: "rows", reason: "a row is beyond the dataset's \(datasetRows) rows")
    }
    let gradient = try NamedTensors.decode(from: &reader, "gradient")
    guard gradient.layout == weights.layout else {
      throw .invalid(field: "gradient", reason: "layout differs from the weights' layout")
    }
    return AuditRecord(
      workerID: workerID, sequence: sequence, computedAtVersion: computedAt,
      appliedAtVersion: appliedAt, modelName: modelName, weights: weights,
      dataset: DatasetIdentity(rows: datasetRows, fingerprint: fingerprint), rows: rows,
      gradient: gradient)
  }
}

extension AuditResult {
  /// `u32 worker id`, `u64 sequence`, `u8 passed`, `f64 largest relative error`,
  /// `u8 conclusive`, `f64 gradient magnitude`, `u64 applied-at version`,
  /// `u8 failed checks`, `u64 replay mismatches`, `u8 confirmed`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(workerID)
    sink.write(sequence)
    sink.write(UInt8(passed ? 1 : 0))
    sink.write(maximumRelativeError)
    sink.write(UInt8(conclusive ? 1 : 0))
    sink.write(gradientMagnitude)
    sink.write(appliedAtVersion)
    sink.write(failedChecks.rawValue)
    sink.write(replayMismatches)
    sink.write(UInt8(confirmed ? 1 : 0))
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> AuditResult {
    let worker = try reader.read(UInt32.self, "audit worker id")
    let sequence = try reader.read(UInt64.self, "audit sequence")
    let passed = try reader.readFlag("audit passed")
    let error = try reader.readNonNegative("audit relative error")
    let conclusive = try reader.readFlag("audit conclusive")
    let magnitude = try reader.readNonNegative("audit gradient magnitude")
    let appliedAt = try reader.read(UInt64.self, "audit applied-at version")
    let checks = try reader.read(UInt8.self, "audit failed checks")
    guard AuditChecks.all.isSuperset(of: AuditChecks(rawValue: checks)) else {
      throw .outOfRange(
        field: "audit failed checks", value: String(checks),
        allowed: "bits 1 (finite differences) and 2 (replay)")
    }
    let mismatches = try reader.read(UInt64.self, "audit replay mismatches")
    let confirmed = try reader.readFlag("audit confirmed")
    guard passed == (checks == 0), !confirmed || !passed else {
      throw .invalid(
        field: "audit failed checks",
        reason: "a passed audit names no failed check and is not confirmed; a failed one names one")
    }
    return AuditResult(
      workerID: worker, sequence: sequence, passed: passed, maximumRelativeError: error,
      conclusive: conclusive, gradientMagnitude: magnitude, appliedAtVersion: appliedAt,
      failedChecks: AuditChecks(rawValue: checks), replayMismatches: mismatches,
      confirmed: confirmed)
  }
}
