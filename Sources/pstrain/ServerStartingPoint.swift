import Roles
import TrainingMath
import WireProtocol

/// What `pstrain server` starts from: the model its flags describe at its
/// initial weights, or with `--init-from FILE` the saved model's weights.
struct ServerStartingPoint {
  /// The model the server trains.
  var model: AnyDifferentiableModel
  /// All the model's weights (the server keeps its shard of them).
  var weights: [Double]
  /// The training flags, their defaults that follow the model (the learning
  /// rate) following the file's model.
  var options: ServerTrainingOptions
  /// The saved model, with `--init-from`.
  var saved: SavedModel?
}

extension ServerCommand {
  /// The model and starting weights: from the flags, or from `--init-from`,
  /// whose model wins; model flags given with other than their default values
  /// must describe the file's model, or the server refuses to start, naming both.
  func startingPoint() throws -> ServerStartingPoint {
    guard let initFrom else {
      let model = try training.model(
        features: try requiredFeatures(), classes: try requiredClasses())
      return ServerStartingPoint(
        model: model, weights: model.initialWeights(seed: training.initSeed), options: training)
    }
    let (saved, model): (SavedModel, AnyDifferentiableModel)
    do { (saved, model) = try SavedModelFile.load(initFrom) } catch {
      throw Failure(message: "--init-from \(error)")
    }
    try checkModelFlags(match: model, in: initFrom)
    var options = training
    if model.name == ChainModel.name {
      options.layers = model.parameterCount
    } else if options.lr == nil {
      options.lr = ServerTrainingOptions.denseLearningRate
    }
    return ServerStartingPoint(model: model, weights: saved.weights, options: options, saved: saved)
  }

  /// The flags that choose a model (all but --features and --classes) given
  /// with other than their defaults, as typed.
  private func modelFlagsGiven() throws -> [String] {
    // Parsed from nothing: the defaults (a value built with init() holds none).
    let defaults = try ServerTrainingOptions.parse([])
    var given: [String] = []
    if training.model != defaults.model { given.append("--model \(training.model)") }
    if training.layers != defaults.layers { given.append("--layers \(training.layers)") }
    if training.activation != defaults.activation {
      given.append("--activation \(training.activation.rawValue)")
    }
    if training.loss != defaults.loss { given.append("--loss \(training.loss.rawValue)") }
    if training.dtype != defaults.dtype { given.append("--dtype \(training.dtype.rawValue)") }
    return given
  }

  /// Refuses model flags that describe another model than `model`, read from
  /// `file`: with flags that choose a model, the model they describe (for the
  /// file's features and classes unless given); with only --features and
  /// --classes, its input and output counts.
  private func checkModelFlags(match model: AnyDifferentiableModel, in file: String) throws {
    let sizes =
      (features.map { ["--features \($0)"] } ?? []) + (classes.map { ["--classes \($0)"] } ?? [])
    let given = try modelFlagsGiven() + sizes
    guard !given.isEmpty else { return }
    let saved = ModelCatalog.descriptor(of: model)
    let conflict =
      "--init-from \(file) holds the model \(saved), but \(given.joined(separator: " "))"
    guard given.count > sizes.count else {
      let inputs = "\(model.inputCount) feature\(model.inputCount == 1 ? "" : "s")"
      let outputs = model.isClassifier ? "\(model.outputCount) classes" : "no classes (regression)"
      guard features ?? model.inputCount == model.inputCount,
        classes == nil || (model.isClassifier && classes == model.outputCount)
      else {
        throw Failure(
          message:
            "\(conflict) does not fit it (\(inputs), \(outputs)); drop the model flags to use the file's model"
        )
      }
      return
    }
    let flagged: AnyDifferentiableModel
    do {
      flagged = try training.model(
        features: features ?? model.inputCount,
        classes: classes ?? (model.isClassifier ? model.outputCount : 2))
    } catch {
      throw Failure(message: "\(conflict) does not describe it (\(error)); drop the model flags")
    }
    let described = ModelCatalog.descriptor(of: flagged)
    guard described == saved else {
      throw Failure(
        message: "\(conflict) describes \(described); drop the model flags to use the file's model")
    }
  }
}
