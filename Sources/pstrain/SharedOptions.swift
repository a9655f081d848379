import ArgumentParser
import Roles
import TrainingMath
import WireProtocol

/// How the server trains: `server` and `train` take the same flags.
struct ServerTrainingOptions: ParsableArguments {
  @Option(
    help:
      "async (apply on arrival), sync (average one gradient per worker per step) or ssp (sync steps, workers up to --staleness steps ahead)."
  )
  var mode: ModeArgument = .async

  @Option(help: "With --mode ssp: how many steps a worker may run ahead of the slowest.")
  var staleness: UInt64 = 1

  @Option(help: "Base learning rate (default: 0.05, or 0.5/L for a chain deeper than 10 layers).")
  var lr: Double?

  @Option(
    help:
      "Update rule on the server: sgd, momentum or adam (dense models; default sgd), or sgd, adagrad or ftrl (sparse models; default adagrad)."
  )
  var optimizer: OptimizerArgument?

  @Option(help: "Momentum coefficient (momentum) or beta1 (adam).")
  var momentum: Double = 0.9

  @Option(help: "Learning-rate schedule: constant, step:EVERY:FACTOR or cosine:TOTAL[:MIN].")
  var lrSchedule: String = "constant"

  @Option(
    help:
      "Weight decay L: sgd and momentum step along g + L*w (L2), adam shrinks w by lr*L*w (AdamW); 0 for none."
  )
  var weightDecay: Double = 0

  @Option(
    help: ArgumentHelp(
      "The model: chain, linear, softmax, mlp:H1[,H2,...], sparse-logreg or fm:K.",
      discussion:
        "chain: the tutorial's e = wL*...*w1*x on one feature (--layers L), squared error. linear: y = W.x + b, squared error. softmax: multinomial logistic regression over --classes K, cross-entropy. mlp:128 or mlp:256,128: dense layers with biases and --activation between them, softmax cross-entropy (or --loss squared for regression with one output). sparse-logreg: binary logistic regression on hashed feature ids (--hash-bits B) of libsvm data, its weights rows of a keyed table created on first touch. fm:8: a factorization machine, a weight and an 8-vector per feature."
    ))
  var model: String = "chain"

  @Option(
    help:
      "Sparse models: feature ids are hashed into 2^B keys (1...40); memory grows with the keys touched, not 2^B."
  )
  var hashBits: Int = 24

  @Option(help: "ftrl: L1 strength (weights it holds at exactly 0).")
  var l1: Double = 0

  @Option(help: "ftrl: L2 strength.")
  var l2: Double = 0

  @Option(help: "Depth L of the chain model e = wL*...*w1*x.")
  var layers: Int = 3

  @Option(help: "Activation between an MLP's layers: relu, tanh or sigmoid.")
  var activation: Activation = .relu

  @Option(
    help: "An MLP's loss: cross-entropy (classification, the default) or squared (regression).")
  var loss: LossArgument = .crossEntropy

  @Option(
    help:
      "Seed of the initial weights of linear, softmax and mlp models (He for relu, Glorot otherwise)."
  )
  var initSeed: UInt64 = 1

  @Option(help: "How the server keeps and sends the weights: float64 or float32.")
  var dtype: DType = .float64

  /// `--loss`.
  enum LossArgument: String, ExpressibleByArgument, CaseIterable {
    case crossEntropy = "cross-entropy"
    case squared
  }

  /// `--dtype`.
  enum DType: String, ExpressibleByArgument, CaseIterable {
    case float64, float32

    var elementType: ElementType { self == .float64 ? .float64 : .float32 }
  }

  /// `--lr`, or the default for the chain's depth: the tutorial's 0.05 up to 10 layers,
  /// then 0.5/L. A step moves the chain's product by about lr·L·x² (every layer's
  /// weight moves it), so a fixed rate that suits 3 layers diverges at the first
  /// step of 1000; 0.5/L keeps that move near 0.5·x² at any depth.
  var learningRate: Double {
    if let lr { return lr }
    if (try? sparseModel()) != nil { return Self.sparseLearningRate }
    return model == "chain" ? Self.defaultLearningRate(layers: layers) : Self.denseLearningRate
  }

  /// The default `--lr` of sparse models: AdaGrad's (or FTRL's α) on mean batch gradients.
  static let sparseLearningRate = 0.1

  /// The sparse model `--model` and `--hash-bits` name, or nil for a dense model.
  func sparseModel() throws -> SparseModelSpec? {
    do {
      return try SparseModelSpec(parsing: model, hashBits: hashBits)
    } catch {
      throw ValidationError("--model: \(error)")
    }
  }

  /// A sparse model with its table's optimizer, or nil for a dense model.
  func keyedModel() throws -> KeyedModel? {
    guard let spec = try sparseModel() else { return nil }
    let kind: SparseOptimizerKind
    switch optimizer ?? .adagrad {
    case .sgd: kind = .sgd
    case .adagrad: kind = .adagrad
    case .ftrl: kind = .ftrl
    case .momentum, .adam:
      throw ValidationError(
        "--optimizer \(optimizer!.rawValue) is for dense models; a sparse model's table takes sgd, adagrad or ftrl"
      )
    }
    return KeyedModel(
      model: spec,
      optimizer: SparseOptimizerSettings(kind: kind, learningRate: learningRate, l1: l1, l2: l2),
      seed: initSeed)
  }

  /// The default `--lr` of linear, softmax and MLP models: plain SGD on mean
  /// mini-batch gradients of inputs scaled to about [0, 1].
  static let denseLearningRate = 0.1

  /// The default `--lr` for a chain of `layers` layers.
  static func defaultLearningRate(layers: Int) -> Double {
    min(0.05, 0.5 / Double(max(1, layers)))
  }

  /// The model spec these flags describe.
  func modelSpec() throws -> ModelSpec {
    do {
      return try ModelSpec(parsing: model, activation: activation, squaredLoss: loss == .squared)
    } catch {
      throw ValidationError("--model: \(error)")
    }
  }

  /// The model these flags describe, for data of `features` features and
  /// `classes` classes (ignored by regression models).
  func model(features: Int, classes: Int) throws -> AnyDifferentiableModel {
    do {
      return try modelSpec().model(
        features: features, classes: classes, layers: layers, elementType: dtype.elementType)
    } catch let error as TrainingMathError {
      throw Failure(message: "\(error)")
    }
  }

  func validate() throws {
    guard learningRate.isFinite, learningRate > 0 else {
      throw ValidationError("--lr must be a finite number > 0")
    }
    guard l1.isFinite, l1 >= 0, l2.isFinite, l2 >= 0 else {
      throw ValidationError("--l1 and --l2 must be finite numbers >= 0")
    }
    if try keyedModel() != nil {
      guard mode == .async else {
        throw ValidationError(
          "--model \(model) trains in async mode (workers pipeline within --pipeline); drop --mode \(mode.rawValue)"
        )
      }
      return
    }
    do { _ = try optimizerSettings() } catch { throw ValidationError("\(error)") }
    guard (1...100_000_000).contains(layers) else {
      throw ValidationError("--layers must be 1...100000000")
    }
    _ = try modelSpec()
  }

  /// The optimizer these flags describe.
  func optimizerSettings() throws -> OptimizerSettings {
    guard let kind = (optimizer ?? .sgd).dense else {
      throw ValidationError(
        "--optimizer \(optimizer!.rawValue) is for sparse models (sparse-logreg, fm:K); dense models take sgd, momentum or adam"
      )
    }
    return try OptimizerSettings(
      kind: kind, learningRate: learningRate,
      schedule: LearningRateSchedule(parsing: lrSchedule),
      beta1: momentum, weightDecay: weightDecay)
  }

  /// The same flags, to pass on to a server process.
  var arguments: [String] {
    var arguments = [
      "--mode", mode.rawValue, "--staleness", "\(staleness)", "--dtype", dtype.rawValue,
      "--lr", "\(learningRate)", "--model", model, "--layers", "\(layers)",
      "--activation", activation.rawValue, "--loss", loss.rawValue, "--init-seed", "\(initSeed)",
      "--momentum", "\(momentum)", "--lr-schedule", lrSchedule, "--hash-bits", "\(hashBits)",
    ]
    if let optimizer { arguments += ["--optimizer", optimizer.rawValue] }
    if weightDecay != 0 { arguments += ["--weight-decay", "\(weightDecay)"] }
    if l1 != 0 { arguments += ["--l1", "\(l1)"] }
    if l2 != 0 { arguments += ["--l2", "\(l2)"] }
    return arguments
  }
}

/// What a worker trains on: `worker` and `train` take the same flags.
struct WorkerTrainingOptions: ParsableArguments {
  @Option(
    help:
      "CSV file with a header row: the label column and the feature columns (default: the tutorial's two samples)."
  )
  var data: String?

  @Option(help: "The data's label column (default: the column named label, else the last).")
  var labelColumn: String?

  @Option(
    help:
      "The data file's format: csv, or libsvm (label id:value ...; the default for .libsvm, .svm and .svmlight files)."
  )
  var format: DataFormat?

  @Option(help: "Passes of each worker over its shard.")
  var epochs: Int = 500

  @Option(help: "Samples per gradient push.")
  var batchSize: Int = 1

  @Option(help: "Pushes a worker keeps in flight (async servers, fixed shards; 1 to 256).")
  var pipeline: Int = 1

  @Option(
    help:
      "Pushes sent together in one frame, answered by one reply (1 to --pipeline; a frame holds at most 1 MiB of gradients): fewer messages per gradient."
  )
  var pushesPerFrame: Int = 1

  @Flag(
    help:
      "Visit the shard's rows in a new order every epoch, drawn from --shuffle-seed, the shard and the epoch (fixed shards only)."
  )
  var shuffle = false

  @Option(help: "With --shuffle: the seed of the epochs' row orders.")
  var shuffleSeed: UInt64 = 1

  /// `--shuffle-seed` with `--shuffle`, else nil (rows in file order).
  var rowOrderSeed: UInt64? { shuffle ? shuffleSeed : nil }

  /// `--epochs` is checked by each command (worker: >= 0, train: >= 1), so that the
  /// message states that command's range.
  func validate() throws {
    guard batchSize >= 1 else { throw ValidationError("--batch-size must be >= 1") }
    // The server's sequence window bounds how many pushes may be in flight.
    let widest = Int(SequenceWindow.width)
    guard (1...widest).contains(pipeline) else {
      throw ValidationError("--pipeline must be 1...\(widest)")
    }
    guard (1...pipeline).contains(pushesPerFrame) else {
      throw ValidationError("--pushes-per-frame must be 1...\(pipeline) (at most --pipeline)")
    }
  }

  /// The same flags, to pass on to a worker process.
  var arguments: [String] {
    [
      "--epochs", "\(epochs)", "--batch-size", "\(batchSize)", "--pipeline", "\(pipeline)",
      "--pushes-per-frame", "\(pushesPerFrame)",
    ]
      + (shuffle ? ["--shuffle", "--shuffle-seed", "\(shuffleSeed)"] : [])
      + dataArguments
  }

  /// `--data` and `--label-column`, for every process that reads the data.
  var dataArguments: [String] {
    (data.map { ["--data", $0] } ?? []) + (labelColumn.map { ["--label-column", $0] } ?? [])
      + (format.map { ["--format", $0.rawValue] } ?? [])
  }

  /// Whether the data is a sparse (libsvm) file.
  var isSparse: Bool { data.map { DataFormat(path: $0, explicit: format) == .libsvm } ?? false }

  /// The data these flags name.
  func loadData() throws -> Dataset { try loadDataset(data, labelColumn: labelColumn) }
}

/// Whether and how the coordinator replays audited gradients (`--replay`).
enum ReplaySetting: String, ExpressibleByArgument, CaseIterable {
  /// Bit for bit.
  case exact
  /// Within the model's rounding bound.
  case rounding
  /// No replay: finite differences only.
  case off

  /// The mode, or nil when off.
  var mode: ReplayMode? {
    switch self {
    case .exact: .exact
    case .rounding: .rounding
    case .off: nil
    }
  }
}

/// How strictly gradients are audited: `coordinator`, `audit` and `train`.
struct AuditToleranceOptions: ParsableArguments {
  @Option(help: "Relative tolerance of an audit, beyond rounding noise.")
  var tolerance: Double = GradientAuditor<ChainModel>.defaultTolerance

  @Option(
    help: """
      Replay each audited gradient with the same code and compare: exact (bit for bit), \
      rounding (within twice the model's rounding bound, for workers on another CPU's \
      BLAS path) or off.
      """)
  var replay: ReplaySetting = .exact

  func validate() throws {
    guard tolerance.isFinite, tolerance > 0 else {
      throw ValidationError("--tolerance must be a finite number > 0")
    }
  }

  /// The checks an audit makes.
  var checks: AuditChecks { replay == .off ? .finiteDifferences : .all }

  /// How replays compare (unused when off).
  var replayMode: ReplayMode { replay.mode ?? .exact }

  /// The same flags, to pass on to a coordinator process.
  var arguments: [String] { ["--tolerance", "\(tolerance)", "--replay", replay.rawValue] }
}

/// `--optimizer`: the dense update rules and the keyed tables' ones.
enum OptimizerArgument: String, ExpressibleByArgument, CaseIterable {
  case sgd, momentum, adam, adagrad, ftrl

  /// The dense rule, or nil for a sparse-only one.
  var dense: OptimizerKind? { OptimizerKind(rawValue: rawValue) }
}

/// Parses `--fault SPEC` for `validate()`.
func validateFault(_ fault: String?) throws {
  guard let fault else { return }
  do { _ = try GradientFault(parsing: fault) } catch { throw ValidationError("--fault: \(error)") }
}

extension Activation: ExpressibleByArgument {}

/// The data the workers read, for the roles that re-check their gradients
/// (`coordinator`, `audit`): pushes name rows of it.
struct AuditedDataOptions: ParsableArguments {
  @Option(
    help:
      "The workers' data file: audits read the rows they name from it (default: the tutorial's two samples)."
  )
  var data: String?

  @Option(help: "The data's label column (default: the column named label, else the last).")
  var labelColumn: String?

  @Option(
    help:
      "The data file's format: csv, or libsvm (the default for .libsvm, .svm and .svmlight files); a sparse model's server means libsvm."
  )
  var format: DataFormat?

  /// The data these flags name.
  func loadData() throws -> Dataset {
    if let data, DataFormat(path: data, explicit: format) == .libsvm {
      throw Failure(
        message:
          "\(data) is libsvm data, which only the coordinator of a sparse model reads; this needs the dense model's CSV file"
      )
    }
    return try loadDataset(data, labelColumn: labelColumn)
  }
}
