import TrainingMath
import WireProtocol

/// How a parameter server is set up.
public struct ServerConfiguration: Sendable {
  /// How gradients are applied.
  public var mode: ConsistencyMode
  /// In sync mode, workers that must have joined before the first step.
  public var requiredWorkers: Int
  /// The optimizer's settings (its state lives in the server).
  public var optimizer: OptimizerSettings
  /// The model the parameters belong to (name and layout only).
  public var model: ModelDescriptor
  /// The initial parameters, in the model's layout.
  public var initialParameters: [Double]
  /// A worker silent for longer than this (ms) is presumed dead and dropped.
  public var deadAfterMilliseconds: UInt64
  /// When set, the server leases rows to workers for this many epochs.
  public var leasedEpochs: UInt64?
  /// Rows per lease.
  public var chunkRows: Int
  /// In ssp mode, how many steps a worker may run ahead of the slowest (sync: 0).
  public var staleness: UInt64
  /// Which part of the parameters this server owns: shard K of M holds the
  /// contiguous element range `shard.rows(of: parameterCount)` of the flat vector.
  public var shard: Shard
  /// When set (`--quarantine`), a worker whose failed audit the coordinator
  /// confirmed is quarantined and, in async mode, its unvouched pushes are
  /// rolled back to a snapshot kept as the policy says; nil: audits are only counted.
  public var quarantine: QuarantinePolicy?

  /// The flat element range this server owns.
  public var parameterRange: Range<Int> { shard.rows(of: model.layout.totalCount) }
  /// The layout of the owned slice (what pushes and replies carry).
  public var sliceLayout: [TensorSpec] { model.layout.slice(parameterRange) }

  /// A configuration; the parameters must fit the model's layout.
  public init(
    mode: ConsistencyMode, requiredWorkers: Int, optimizer: OptimizerSettings,
    model: ModelDescriptor,
    initialParameters: [Double], deadAfterMilliseconds: UInt64 = 10_000,
    leasedEpochs: UInt64? = nil, chunkRows: Int = 64, staleness: UInt64 = 0,
    shard: Shard = Shard.whole, quarantine: QuarantinePolicy? = nil,
    validatingParameters: Bool = true
  ) {
    // A server that resumes from a checkpoint takes its parameters from there.
    precondition(
      !validatingParameters
        || initialParameters.count == shard.rows(of: model.layout.totalCount).count)
    self.shard = shard
    self.mode = mode
    self.requiredWorkers = max(1, requiredWorkers)
    self.optimizer = optimizer
    self.model = model
    self.initialParameters = initialParameters
    self.deadAfterMilliseconds = deadAfterMilliseconds
    self.leasedEpochs = leasedEpochs
    self.chunkRows = max(1, chunkRows)
    self.staleness = mode == .ssp ? staleness : 0
    self.quarantine = quarantine
  }
}
