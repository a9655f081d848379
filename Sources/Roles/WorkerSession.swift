import TrainingMath
import WireProtocol

/// A worker as a state machine: it joins, then for each batch of its shard runs
/// forward and cached backward at the weights it last received, pushes the
/// gradient and waits for fresh weights; after the last epoch it leaves.
public final class WorkerSession<Model: DifferentiableModel> {
  /// What the worker does next.
  public enum Step: Equatable {
    /// Send this message and wait for the reply.
    case send(WireMessage)
    /// The server accepted the leave; the worker is done.
    case finished
  }

  /// The worker's id.
  public let workerID: UInt32
  /// The worker's shard.
  public let shard: Shard
  /// The samples of the shard, in order.
  public let samples: [Sample]
  /// Passes over the shard.
  public let epochs: Int
  /// Samples per push.
  public let batchSize: Int
  /// The injected fault (normally none).
  public let fault: GradientFault
  private let objective: Objective<Model>

  /// Gradients pushed and applied so far.
  public private(set) var pushesApplied: UInt64 = 0
  /// The latest weights version received.
  public private(set) var version: UInt64 = 0
  /// The latest weights received.
  public private(set) var weights: [Double] = []
  /// Mean loss of the batches of the current epoch, at the weights they were computed at.
  public private(set) var epochLoss: Double = 0
  /// The epoch being worked on, 0-based.
  public private(set) var epoch = 0

  private var nextBatchStart = 0
  private var sequence: UInt64 = 0
  private var recentWeights: [[Double]] = []
  private var lossSum = 0.0
  private var batchesThisEpoch = 0
  private var leaving = false
  private var gradient: [Double]

  /// A worker for `model` on `samples` (its shard of the data).
  public init(
    workerID: UInt32, shard: Shard, samples: [Sample], model: Model, epochs: Int,
    batchSize: Int = 1, fault: GradientFault = .none
  ) throws(RoleError) {
    guard epochs >= 0 else { throw .invalidArgument("epochs must be >= 0, got \(epochs)") }
    guard batchSize >= 1 else {
      throw .invalidArgument("batch size must be >= 1, got \(batchSize)")
    }
    if let bad = fault.flipped.first(where: { $0 >= model.parameterCount }) {
      throw .invalidArgument(
        "fault flip=\(bad) names a coordinate the model does not have (it has \(model.parameterCount))"
      )
    }
    self.workerID = workerID
    self.shard = shard
    self.samples = samples
    self.epochs = epochs
    self.batchSize = batchSize
    self.fault = fault
    self.objective = Objective(model: model)
    self.gradient = [Double](repeating: 0, count: model.parameterCount)
  }

  /// The model as the server knows it.
  public var modelDescriptor: ModelDescriptor {
    ModelDescriptor(name: objective.model.name, layout: objective.model.layout)
  }

  /// The first message: join.
  public func start() -> WireMessage {
    .join(Join(workerID: workerID, shard: shard, model: modelDescriptor))
  }

  /// Feeds the server's reply and returns what to do next.
  public func receive(_ reply: WireMessage) throws(RoleError) -> Step {
    switch reply {
    case .weights(let update):
      guard update.parameters.layout == objective.model.layout else {
        throw .unexpectedReply(
          expected: "weights in layout \(objective.model.layout)",
          got: "layout \(update.parameters.layout)")
      }
      if sequence > 0 { pushesApplied += 1 }
      version = update.version
      weights = update.parameters.values
      if fault.staleness > 0 {
        recentWeights.append(weights)
        if recentWeights.count > fault.staleness + 1 { recentWeights.removeFirst() }
      }
      return .send(nextMessage())
    case .left(let id) where id == workerID && leaving:
      return .finished
    case .error(let error):
      throw .refused(error)
    default:
      throw .unexpectedReply(expected: leaving ? "left" : "weights", got: "\(reply.type)")
    }
  }

  private func nextMessage() -> WireMessage {
    if nextBatchStart >= samples.count {
      if batchesThisEpoch > 0 { epoch += 1 }
      epochLoss = batchesThisEpoch > 0 ? lossSum / Double(batchesThisEpoch) : 0
      lossSum = 0
      batchesThisEpoch = 0
      nextBatchStart = 0
    }
    guard epoch < epochs, !samples.isEmpty else {
      leaving = true
      return .leave(workerID: workerID)
    }
    let end = min(nextBatchStart + batchSize, samples.count)
    let batch = Array(samples[nextBatchStart..<end])
    nextBatchStart = end
    let point = fault.staleness > 0 ? recentWeights[0] : weights
    lossSum += objective.gradient(weights: point, samples: batch, into: &gradient)
    batchesThisEpoch += 1
    var pushed = gradient
    fault.corrupt(&pushed)
    sequence += 1
    return .push(
      GradientPush(
        workerID: workerID, sequence: sequence, computedAtVersion: version, samples: batch,
        gradient: NamedTensors(layout: objective.model.layout, values: pushed)))
  }
}
