import WireProtocol

/// What the coordinator writes to its TensorBoard run: each evaluation's
/// scalars at the version evaluated (once per version: the final evaluation of
/// weights already evaluated is not written again) and each audit's at the
/// version its push was applied at (`TensorBoardScalars` says which).
public final class CoordinatorTensorBoard {
  private let file: TensorBoardEventFile
  private var lastEvaluatedVersion: UInt64?

  /// Writes to `file`.
  public init(file: TensorBoardEventFile) { self.file = file }

  /// Writes a dense evaluation.
  public func evaluated(_ evaluation: HeldOutEvaluation) {
    evaluated(version: evaluation.version) { TensorBoardScalars.of(evaluation) }
  }

  /// Writes a sparse evaluation (with the AUC).
  public func evaluated(_ evaluation: SparseHeldOutEvaluation) {
    evaluated(version: evaluation.version) { TensorBoardScalars.of(evaluation) }
  }

  /// Writes the scalars of an evaluation of `version`, unless that version's are written.
  private func evaluated(version: UInt64, _ scalars: () -> [TensorBoardEvent.Scalar]) {
    guard version != lastEvaluatedVersion else { return }
    lastEvaluatedVersion = version
    file.write(step: version, scalars())
  }

  /// Writes an audit's verdict and figures.
  public func audited(_ report: AuditReport) {
    file.write(step: report.appliedAtVersion, TensorBoardScalars.of(report))
  }

  /// Closes the file.
  public func close() { file.close() }
}
