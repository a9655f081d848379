import TrainingMath
import WireProtocol

/// The scalars pstrain's roles write to TensorBoard, with their tags (slashes
/// group them into TensorBoard's sections; docs/tensorboard.md lists them). The
/// step of every one is a server parameter version, so the runs line up.
public enum TensorBoardScalars {
  /// Mean loss on the held-out rows, at each evaluation (coordinator).
  public static let testLoss = "loss/test"
  /// Mean loss of an audited push's rows at the weights it was computed at,
  /// which the audit's replay computes (coordinator; audits that replay).
  public static let trainLoss = "loss/train"
  /// Fraction of held-out rows classified right (coordinator; classifiers).
  public static let testAccuracy = "accuracy/test"
  /// ROC AUC on the held-out rows (coordinator; sparse models).
  public static let testAUC = "auc/test"
  /// An audit's largest relative error against finite differences (coordinator;
  /// audits that ran them).
  public static let auditRelativeError = "audit/relative_error"
  /// 1 when an audit passed, 0 when it failed (coordinator; every audit).
  public static let auditPassed = "audit/passed"
  /// Rows per second of the gradients applied since the last point (server).
  public static let samplesPerSecond = "throughput/samples_per_second"
  /// Mean staleness, in versions, of the gradients applied since the last point (server).
  public static let stalenessMean = "staleness/mean"
  /// Largest staleness of the gradients applied since the last point (server).
  public static let stalenessMax = "staleness/max"
  /// The learning rate the next update uses (server).
  public static let learningRate = "optimizer/learning_rate"

  /// An evaluation's scalars, at the version evaluated: test loss, and the
  /// accuracy when the model classifies. A loss that is not finite is left out.
  public static func of(_ evaluation: HeldOutEvaluation) -> [TensorBoardEvent.Scalar] {
    var scalars: [TensorBoardEvent.Scalar] = []
    if evaluation.result.loss.isFinite {
      scalars.append(.init(tag: testLoss, value: Float(evaluation.result.loss)))
    }
    if let accuracy = evaluation.result.accuracy {
      scalars.append(.init(tag: testAccuracy, value: Float(accuracy)))
    }
    return scalars
  }

  /// A sparse evaluation's scalars: the dense ones and the AUC (when both classes occur).
  public static func of(_ evaluation: SparseHeldOutEvaluation) -> [TensorBoardEvent.Scalar] {
    of(evaluation.base) + (evaluation.auc.map { [.init(tag: testAUC, value: Float($0))] } ?? [])
  }

  /// An audit's scalars, at the version its push was applied at: passed (1/0),
  /// the relative error when finite differences ran, the batch's loss when the
  /// replay ran.
  public static func of(_ report: AuditReport) -> [TensorBoardEvent.Scalar] {
    var scalars: [TensorBoardEvent.Scalar] = [.init(tag: auditPassed, value: report.passed ? 1 : 0)]
    if let audit = report.audit {
      scalars.append(
        .init(
          tag: auditRelativeError,
          value: Float(CoordinatorLoop.finite(audit.maximumRawRelativeError))))
    }
    if let loss = report.replay?.batchLoss, loss.isFinite {
      scalars.append(.init(tag: trainLoss, value: Float(loss)))
    }
    return scalars
  }
}
