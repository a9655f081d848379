import TrainingMath

/// Every message of the pstrain protocol. One message is one ZeroMQ frame;
/// `docs/protocol.md` gives the byte layout of each.
public enum WireMessage: Equatable, Sendable {
  /// Worker → server: join the run; answered with `.weights`.
  case join(Join)
  /// Worker → server: a gradient; answered with `.weights` after it is applied.
  case push(GradientPush)
  /// Server → worker: the current parameters and their version.
  case weights(WeightsReply)
  /// Anyone → server: ask for `.status`.
  case statusRequest
  /// Server → client: the server's state.
  case status(ServerStatus)
  /// Coordinator → server: start, renew or (every = 0) end an audit subscription.
  case auditSubscribe(AuditSubscription)
  /// Server → coordinator: the state of the subscription; sent after every record it covers.
  case subscription(SubscriptionState)
  /// Server → coordinator: one applied gradient with the weights it was computed at.
  case auditRecord(AuditRecord)
  /// Worker → server: the worker is done and leaves the membership.
  case leave(workerID: UInt32)
  /// Server → worker: the leave was accepted.
  case left(workerID: UInt32)
  /// Server → client: the request was refused; nothing changed.
  case error(ErrorReply)
  /// Worker → server: still alive while waiting (no reply).
  case heartbeat(workerID: UInt32)
  /// Worker → server: ask for rows to train on (leased work distribution).
  case leaseRequest(workerID: UInt32)
  /// Server → worker: rows leased to the worker.
  case lease(Lease)
  /// Server → worker: no rows to lease now (retry later) or ever (training finished).
  case noLease(NoLease)
  /// Coordinator → server: the verdict of one audit, for `status` (no reply).
  case auditResult(AuditResult)
  /// Worker → server (async mode): 2 to 256 gradients of one worker in one
  /// frame, with consecutive sequence numbers, applied in order as if pushed one
  /// by one, or all refused; answered with one `.weights` acknowledging the last.
  case pushes([GradientPush])

  /// The message's type, as written in its header.
  public var type: MessageType {
    switch self {
    case .join: .join
    case .push: .push
    case .weights: .weights
    case .statusRequest: .statusRequest
    case .status: .status
    case .auditSubscribe: .auditSubscribe
    case .subscription: .subscription
    case .auditRecord: .auditRecord
    case .leave: .leave
    case .left: .left
    case .error: .error
    case .heartbeat: .heartbeat
    case .leaseRequest: .leaseRequest
    case .lease: .lease
    case .noLease: .noLease
    case .auditResult: .auditResult
    case .pushes: .pushes
    }
  }
}

/// The type byte of a message header.
public enum MessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
  case join = 1
  case push = 2
  case weights = 3
  case statusRequest = 4
  case status = 5
  case auditSubscribe = 6
  case subscription = 7
  case auditRecord = 8
  case leave = 9
  case left = 10
  case error = 11
  case heartbeat = 12
  case leaseRequest = 13
  case lease = 14
  case noLease = 15
  case auditResult = 16
  case pushes = 17

  public var description: String {
    switch self {
    case .join: "join"
    case .push: "push"
    case .weights: "weights"
    case .statusRequest: "status-request"
    case .status: "status"
    case .auditSubscribe: "audit-subscribe"
    case .subscription: "subscription"
    case .auditRecord: "audit-record"
    case .leave: "leave"
    case .left: "left"
    case .error: "error"
    case .heartbeat: "heartbeat"
    case .leaseRequest: "lease-request"
    case .lease: "lease"
    case .noLease: "no-lease"
    case .auditResult: "audit-result"
    case .pushes: "pushes"
    }
  }
}

/// Which model a peer computes with: its name and parameter layout. The server
/// only compares it with its own; the coordinator uses it to rebuild the loss.
public struct ModelDescriptor: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// The model's name, e.g. `chain`.
  public var name: String
  /// The parameter tensors.
  public var layout: [TensorSpec]

  /// A descriptor of model `name` with `layout`.
  public init(name: String, layout: [TensorSpec]) {
    self.name = name
    self.layout = layout
  }

  public var description: String {
    "\(name)(" + layout.map(\.description).joined(separator: ", ") + ")"
  }
}

/// A worker's request to join.
public struct Join: Equatable, Sendable {
  /// The worker's id, unique in the run (its shard index by convention).
  public var workerID: UInt32
  /// The worker's shard.
  public var shard: Shard
  /// The model the worker computes gradients of.
  public var model: ModelDescriptor
  /// The data the worker reads: every worker of a run must read the same.
  public var dataset: DatasetIdentity

  /// A join request.
  public init(workerID: UInt32, shard: Shard, model: ModelDescriptor, dataset: DatasetIdentity) {
    self.workerID = workerID
    self.shard = shard
    self.model = model
    self.dataset = dataset
  }
}

/// Which data a worker reads: its row count and a fingerprint of its values,
/// so the server can refuse a worker that reads a different file.
public struct DatasetIdentity: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// Rows in the whole dataset.
  public var rows: UInt64
  /// `Dataset.fingerprint` of the rows.
  public var fingerprint: UInt64

  /// An identity.
  public init(rows: UInt64, fingerprint: UInt64) {
    self.rows = rows
    self.fingerprint = fingerprint
  }

  public var description: String {
    "\(rows) rows (fingerprint \(String(fingerprint, radix: 16)))"
  }
}

/// Rows leased to a worker: train on `firstRow ..< firstRow + rowCount`, in
/// order, starting from the current weights that come with the lease (a worker
/// that waited for rows would otherwise hold stale ones).
public struct Lease: Equatable, Sendable {
  /// The epoch the rows belong to, 0-based.
  public var epoch: UInt64
  /// First row of the lease.
  public var firstRow: UInt64
  /// Number of rows.
  public var rowCount: UInt64
  /// The current weights.
  public var weights: WeightsReply

  /// A lease.
  public init(epoch: UInt64, firstRow: UInt64, rowCount: UInt64, weights: WeightsReply) {
    self.epoch = epoch
    self.firstRow = firstRow
    self.rowCount = rowCount
    self.weights = weights
  }

  /// The leased rows.
  public var rows: Range<Int> { Int(firstRow)..<Int(firstRow + rowCount) }
}

/// The verdict of one audit, as the coordinator reports it to the server.
public struct AuditResult: Equatable, Sendable {
  /// The audited worker.
  public var workerID: UInt32
  /// Its push.
  public var sequence: UInt64
  /// Whether the gradient agreed with its finite differences.
  public var passed: Bool
  /// The audit's largest relative error.
  public var maximumRelativeError: Double
  /// Whether any comparison was above rounding noise; when none was (a
  /// converged run), the relative error measures the arithmetic, not the gradient.
  public var conclusive: Bool
  /// The size of the audited gradient (its largest derivative compared).
  public var gradientMagnitude: Double

  /// A verdict.
  public init(
    workerID: UInt32, sequence: UInt64, passed: Bool, maximumRelativeError: Double,
    conclusive: Bool = true, gradientMagnitude: Double = 0
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.passed = passed
    self.maximumRelativeError = maximumRelativeError
    self.conclusive = conclusive
    self.gradientMagnitude = gradientMagnitude
  }
}

/// Why there is no lease for now.
public struct NoLease: Equatable, Sendable {
  /// Every epoch is done: the worker should leave.
  public var finished: Bool
  /// Otherwise, ask again after this many milliseconds (others hold the last rows of the epoch).
  public var retryAfterMilliseconds: UInt32

  /// A no-lease answer.
  public init(finished: Bool, retryAfterMilliseconds: UInt32) {
    self.finished = finished
    self.retryAfterMilliseconds = retryAfterMilliseconds
  }
}

/// A gradient pushed by a worker.
public struct GradientPush: Equatable, Sendable {
  /// The pushing worker.
  public var workerID: UInt32
  /// Per-worker sequence number, strictly increasing from 1.
  public var sequence: UInt64
  /// The weights version the gradient was computed at.
  public var computedAtVersion: UInt64
  /// The samples (with row numbers) whose mean loss this is the gradient of.
  public var samples: [Sample]
  /// The gradient, in the server's layout.
  public var gradient: NamedTensors

  /// A gradient push.
  public init(
    workerID: UInt32, sequence: UInt64, computedAtVersion: UInt64, samples: [Sample],
    gradient: NamedTensors
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.computedAtVersion = computedAtVersion
    self.samples = samples
    self.gradient = gradient
  }
}

extension WireMessage {
  /// Gradients the message carries: 1 for a push, n for n pushes, else 0.
  public var pushCount: Int {
    switch self {
    case .push: 1
    case .pushes(let pushes): pushes.count
    default: 0
    }
  }

  /// Whether the message's tensors are small enough to keep as decode storage
  /// (see `WireCodec.reusableElementLimit`).
  public var isWorthReusing: Bool {
    switch self {
    case .push(let push): push.gradient.values.count <= WireCodec.reusableElementLimit
    case .pushes(let pushes):
      pushes.count * (pushes.first?.gradient.values.count ?? 0) <= WireCodec.reusableElementLimit
    case .weights(let reply): reply.parameters.values.count <= WireCodec.reusableElementLimit
    default: true
    }
  }
}

extension GradientPush {
  /// A placeholder push with no samples and no tensors, to decode into.
  public static let empty = GradientPush(
    workerID: 0, sequence: 0, computedAtVersion: 0, samples: [], gradient: .empty)
}

/// The server's parameters at a version.
public struct WeightsReply: Equatable, Sendable {
  /// The version: the number of updates applied so far.
  public var version: UInt64
  /// The push sequence number this answers (0 for a join), so a worker that
  /// retried can tell a late duplicate reply from the one it waits for.
  public var acknowledgedSequence: UInt64
  /// In the answer to a join (or lease request): bit i set when sequence
  /// `acknowledgedSequence - 1 - i` was applied too (256 bits). A pipelined worker's push
  /// may have been overtaken by a later one; this tells it which of its pushes
  /// in flight the server has, so it pushes the others' rows again.
  public var appliedBelow: AppliedBitmap
  /// The parameters.
  public var parameters: NamedTensors

  /// Parameters at `version`, answering push `acknowledgedSequence`.
  public init(
    version: UInt64, acknowledgedSequence: UInt64 = 0,
    appliedBelow: AppliedBitmap = AppliedBitmap(), parameters: NamedTensors
  ) {
    self.version = version
    self.acknowledgedSequence = acknowledgedSequence
    self.appliedBelow = appliedBelow
    self.parameters = parameters
  }
}

/// How the server applies gradients.
public enum ConsistencyMode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
  /// Apply each gradient on arrival.
  case async = 1
  /// Average one gradient from every worker per step.
  case sync = 2
  /// Steps as in sync, but a worker may run up to `staleness` steps ahead of the slowest.
  case ssp = 3

  public var description: String {
    switch self {
    case .async: "async"
    case .sync: "sync"
    case .ssp: "ssp"
    }
  }
}

/// One worker as the server sees it.
public struct WorkerStatus: Equatable, Sendable {
  /// The worker's id.
  public var workerID: UInt32
  /// Its shard.
  public var shard: Shard
  /// Gradients applied from it.
  public var pushesApplied: UInt64
  /// The last sequence number accepted from it.
  public var lastSequence: UInt64
  /// Staleness of its last applied gradient: versions between the weights it was
  /// computed at and the version it was applied to.
  public var lastStaleness: UInt64

  /// A worker's status.
  public init(
    workerID: UInt32, shard: Shard, pushesApplied: UInt64, lastSequence: UInt64,
    lastStaleness: UInt64 = 0
  ) {
    self.workerID = workerID
    self.shard = shard
    self.pushesApplied = pushesApplied
    self.lastSequence = lastSequence
    self.lastStaleness = lastStaleness
  }
}

/// The server's state, as `pstrain status` shows it.
public struct ServerStatus: Equatable, Sendable {
  /// How gradients are applied.
  public var mode: ConsistencyMode
  /// The parameters' version (updates applied to the parameters).
  public var version: UInt64
  /// Gradients applied (in sync mode, several per version).
  public var gradientsApplied: UInt64
  /// Messages refused with an error or dropped as malformed.
  public var rejected: UInt64
  /// The SGD learning rate.
  public var learningRate: Double
  /// Workers a sync step waits for before the first step.
  public var requiredWorkers: UInt32
  /// The model name the parameters belong to.
  public var modelName: String
  /// The current parameters.
  public var parameters: NamedTensors
  /// The workers currently joined.
  public var workers: [WorkerStatus]
  /// Workers that joined and left.
  public var workersLeft: UInt32
  /// Audit records sent to coordinators.
  public var auditRecordsSent: UInt64
  /// Leased work: epochs to train (0: workers bring their own shards).
  public var epochs: UInt64
  /// Leased work: the current epoch, 0-based (equal to `epochs` when finished).
  public var epoch: UInt64
  /// Leased work: rows of the current epoch whose gradient has been applied.
  public var rowsAppliedInEpoch: UInt64
  /// Rows of the dataset the workers read (0 before the first join).
  public var datasetRows: UInt64
  /// Workers presumed dead after a silence longer than the liveness timeout.
  public var workersDead: UInt32
  /// The optimizer, described (e.g. `adam(lr 0.001, ...)`).
  public var optimizer: String
  /// The learning rate the next update uses (after the schedule).
  public var currentLearningRate: Double
  /// In ssp mode, the staleness bound (0 otherwise).
  public var staleness: UInt64
  /// Which part of the parameters this server owns (0/1: all of them).
  public var serverShard: Shard
  /// The flat index of the first parameter in `parameters`.
  public var parameterOffset: UInt64
  /// Parameters of the whole model, across all server shards.
  public var totalParameters: UInt64
  /// Audit verdicts coordinators reported, and how many failed.
  public var auditsReported: UInt64
  public var auditsFailed: UInt64
  /// The latest reported verdict, if any.
  public var lastAudit: AuditResult?
  /// How checkpoints are going (nil: the server writes none).
  public var checkpoints: CheckpointHealth?
  /// What the server restored when it started with `--resume` (nil otherwise).
  public var resume: ResumeStatus?

  /// A server status.
  public init(
    mode: ConsistencyMode, version: UInt64, gradientsApplied: UInt64, rejected: UInt64,
    learningRate: Double, requiredWorkers: UInt32, modelName: String, parameters: NamedTensors,
    workers: [WorkerStatus], workersLeft: UInt32, auditRecordsSent: UInt64, epochs: UInt64 = 0,
    epoch: UInt64 = 0, rowsAppliedInEpoch: UInt64 = 0, datasetRows: UInt64 = 0,
    workersDead: UInt32 = 0, optimizer: String = "sgd", currentLearningRate: Double? = nil,
    staleness: UInt64 = 0, serverShard: Shard = Shard.whole,
    parameterOffset: UInt64 = 0, totalParameters: UInt64? = nil, auditsReported: UInt64 = 0,
    auditsFailed: UInt64 = 0, lastAudit: AuditResult? = nil, checkpoints: CheckpointHealth? = nil,
    resume: ResumeStatus? = nil
  ) {
    self.checkpoints = checkpoints
    self.resume = resume
    self.auditsReported = auditsReported
    self.auditsFailed = auditsFailed
    self.lastAudit = lastAudit
    self.staleness = staleness
    self.serverShard = serverShard
    self.parameterOffset = parameterOffset
    self.totalParameters = totalParameters ?? UInt64(parameters.values.count)
    self.optimizer = optimizer
    self.currentLearningRate = currentLearningRate ?? learningRate
    self.epochs = epochs
    self.epoch = epoch
    self.rowsAppliedInEpoch = rowsAppliedInEpoch
    self.datasetRows = datasetRows
    self.workersDead = workersDead
    self.mode = mode
    self.version = version
    self.gradientsApplied = gradientsApplied
    self.rejected = rejected
    self.learningRate = learningRate
    self.requiredWorkers = requiredWorkers
    self.modelName = modelName
    self.parameters = parameters
    self.workers = workers
    self.workersLeft = workersLeft
    self.auditRecordsSent = auditRecordsSent
  }
}

/// A coordinator's request for audit records.
public struct AuditSubscription: Equatable, Sendable {
  /// Send a record for gradients computed at every version that is a multiple
  /// of `every`; 0 ends the subscription.
  public var every: UInt64
  /// The subscription lapses unless renewed within this many milliseconds.
  public var leaseMilliseconds: UInt32

  /// A subscription request.
  public init(every: UInt64, leaseMilliseconds: UInt32) {
    self.every = every
    self.leaseMilliseconds = leaseMilliseconds
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
  /// The samples the gradient is of.
  public var samples: [Sample]
  /// The gradient as pushed.
  public var gradient: NamedTensors

  /// An audit record.
  public init(
    workerID: UInt32, sequence: UInt64, computedAtVersion: UInt64, appliedAtVersion: UInt64,
    modelName: String, weights: NamedTensors, samples: [Sample], gradient: NamedTensors
  ) {
    self.workerID = workerID
    self.sequence = sequence
    self.computedAtVersion = computedAtVersion
    self.appliedAtVersion = appliedAtVersion
    self.modelName = modelName
    self.weights = weights
    self.samples = samples
    self.gradient = gradient
  }
}

/// Why the server refused a request.
public enum ErrorCode: UInt16, Sendable, CaseIterable, CustomStringConvertible {
  case malformed = 1
  case unsupportedVersion = 2
  case unknownType = 3
  case notJoined = 4
  case duplicateWorker = 5
  case layoutMismatch = 6
  case shardMismatch = 7
  case versionMismatch = 8
  case replayed = 9
  case unexpectedMessage = 10
  case nonFinite = 11
  case leaseLost = 12
  case datasetMismatch = 13

  public var description: String {
    switch self {
    case .malformed: "malformed"
    case .unsupportedVersion: "unsupported-version"
    case .unknownType: "unknown-type"
    case .notJoined: "not-joined"
    case .duplicateWorker: "duplicate-worker"
    case .layoutMismatch: "layout-mismatch"
    case .shardMismatch: "shard-mismatch"
    case .versionMismatch: "version-mismatch"
    case .replayed: "replayed"
    case .unexpectedMessage: "unexpected-message"
    case .nonFinite: "non-finite"
    case .leaseLost: "lease-lost"
    case .datasetMismatch: "dataset-mismatch"
    }
  }
}

/// A refusal: what was wrong, for the peer's error message.
public struct ErrorReply: Equatable, Sendable, CustomStringConvertible {
  /// Longest message kept, in bytes.
  public static let maximumMessageLength = 1024

  /// The reason class.
  public var code: ErrorCode
  /// A readable explanation.
  public var message: String

  /// An error reply; the message is cut to 1024 bytes.
  public init(code: ErrorCode, message: String) {
    self.code = code
    var text = message
    while text.utf8.count > Self.maximumMessageLength { text.removeLast() }
    self.message = text
  }

  public var description: String { "\(code): \(message)" }
}
