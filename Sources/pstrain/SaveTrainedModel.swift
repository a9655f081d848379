import Roles
import TrainingMath
import WireProtocol

/// `pstrain train --save-model FILE`: the weights a run ended with, written
/// with the model's descriptor and where they came from, for `pstrain predict`
/// and `pstrain server --init-from`.
enum SaveTrainedModel {
  /// What wrote a saved model: this program, its version and command.
  static func creator(_ command: String) -> String {
    "pstrain \(PStrain.configuration.version) \(command)"
  }

  /// Writes the weights `outcome` ended with for `model`, trained on
  /// `dataset`, to `path`, and says so on `progress`; an interrupted run's
  /// weights are what it reached. A diverged run writes nothing (said on
  /// stderr; the run's exit status says the rest); weights not in the model's
  /// layout are refused.
  static func write(
    _ outcome: TrainCommand.Outcome, model: AnyDifferentiableModel, dataset: Dataset,
    to path: String, progress: (String) -> Void
  ) throws {
    guard outcome.divergence == nil else {
      printError("--save-model \(path): not written, training diverged")
      return
    }
    let status = outcome.status
    let weights = status.parameters.values
    // The server's layout, merged over shards, may have lost shapes: the
    // values must still be the model's tensors in order.
    guard status.parameters.layout.hasSameStorage(as: model.layout) else {
      throw Failure(
        message:
          "--save-model \(path): the server's tensors \(status.parameters.layout) are not the model's \(model.layout)"
      )
    }
    guard weights.allSatisfy(\.isFinite) else {
      throw Failure(message: "--save-model \(path): not written, the weights are not finite")
    }
    let saved = SavedModel(
      model: ModelCatalog.descriptor(of: model), weights: weights, version: status.version,
      gradientsApplied: status.gradientsApplied,
      dataset: DatasetIdentity(rows: UInt64(dataset.count), fingerprint: dataset.fingerprint),
      createdBy: creator("train"))
    do { try SavedModelFile.write(saved, to: path) } catch {
      throw Failure(message: "cannot write --save-model \(path): \(error)")
    }
    progress("train: saved the model to \(path) (version \(status.version))")
  }
}
