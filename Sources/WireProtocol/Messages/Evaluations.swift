// Evaluations: `evaluation`, the coordinator's measure of the model on held-out
// data, which the server keeps (the latest) for `status` and its metrics.

/// How the model did on held-out data at one version, as the coordinator
/// reports it to the server.
public struct EvaluationReport: Equatable, Sendable {
  /// The version of the weights evaluated.
  public var version: UInt64
  /// Rows of the held-out data evaluated (at least 1).
  public var rows: UInt64
  /// The mean loss over them (finite, >= 0).
  public var loss: Double
  /// The fraction classified right, in [0, 1]; nil for a regression model.
  public var accuracy: Double?
  /// The area under the ROC curve of a binary classifier's scores, in [0, 1]
  /// (a sparse model's usual figure: accuracy says little when positives are
  /// rare); nil when not measured.
  public var auc: Double?

  /// A report of an evaluation at `version` over `rows` rows.
  public init(version: UInt64, rows: UInt64, loss: Double, accuracy: Double?, auc: Double? = nil) {
    self.version = version
    self.rows = rows
    self.loss = loss
    self.accuracy = accuracy
    self.auc = auc
  }
}

extension EvaluationReport {
  /// `u64 version`, `u64 rows`, `f64 loss`, `u8` 1 if an accuracy follows, then
  /// `f64 accuracy`, `u8` 1 if an AUC follows, then `f64 auc`.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(version)
    sink.write(rows)
    sink.write(loss)
    sink.write(UInt8(accuracy == nil ? 0 : 1))
    if let accuracy { sink.write(accuracy) }
    sink.write(UInt8(auc == nil ? 0 : 1))
    if let auc { sink.write(auc) }
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> EvaluationReport {
    let version = try reader.read(UInt64.self, "evaluation version")
    let rows = try reader.read(UInt64.self, "evaluation rows")
    guard rows >= 1 else {
      throw .outOfRange(field: "evaluation rows", value: "0", allowed: ">= 1")
    }
    let loss = try reader.readNonNegative("evaluation loss")
    let accuracy = try readFraction(from: &reader, "evaluation accuracy")
    let auc = try readFraction(from: &reader, "evaluation auc")
    return EvaluationReport(version: version, rows: rows, loss: loss, accuracy: accuracy, auc: auc)
  }

  /// `u8` 1 if a value follows, then `f64` in [0, 1].
  private static func readFraction(from reader: inout ByteReader, _ field: String)
    throws(DecodeError) -> Double?
  {
    guard try reader.readFlag("\(field) present") else { return nil }
    let value = try reader.readFinite(field)
    guard (0...1).contains(value) else {
      throw .outOfRange(field: field, value: "\(value)", allowed: "0 to 1")
    }
    return value
  }
}
