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
  /// When set, the model is a sparse one whose parameters are rows of a keyed
  /// table (`KeyedParameters`); `model` then describes one row (`KeyedModel.descriptor`).
  public var keyed: KeyedModel?

  /// The flat element range this server owns. A keyed model's dense part is its
  /// row shape alone, which every shard keeps whole.
  public var parameterRange: Range<Int> {
    keyed == nil ? shard.rows(of: model.layout.totalCount) : 0..<model.layout.totalCount
  }
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
        || initialParameters.count == shard.rows(of: model.layout.totalCount).count
        || initialParameters.count == model.layout.totalCount)
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

/// A sparse model as a server holds it: the model, its table's optimizer and
/// the seed its rows start from.
public struct KeyedModel: Equatable, Sendable {
  /// The model.
  public var model: SparseModelSpec
  /// The keyed table's update rule.
  public var optimizer: SparseOptimizerSettings
  /// The seed of rows' starting values (fm factors).
  public var seed: UInt64

  /// A keyed model.
  public init(model: SparseModelSpec, optimizer: SparseOptimizerSettings, seed: UInt64) {
    self.model = model
    self.optimizer = optimizer
    self.seed = seed
  }

  /// How the model is named in joins: its wire name, and one tensor `row` of
  /// its row width, so a worker of another model or width is refused at join.
  public var descriptor: ModelDescriptor {
    ModelDescriptor(
      name: model.wireName,
      layout: [TensorSpec(name: "row", count: model.rowWidth, elementType: .float64)])
  }
}
