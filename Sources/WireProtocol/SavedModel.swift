import TrainingMath

/// A trained model kept in a file: which model (name and layout, enough to
/// build it again), its weights, and where they came from. `pstrain train
/// --save-model` writes one; `pstrain predict` and `pstrain server --init-from`
/// read it. Serialized by `SavedModelCodec`.
public struct SavedModel: Equatable, Sendable {
  /// Longest accepted `createdBy`, in bytes.
  public static let maximumCreatorLength = 255

  /// The model: its wire name and tensors with shapes and element types.
  public var model: ModelDescriptor
  /// Every parameter, in the model's layout (Float32 tensors' values exactly
  /// representable as Float).
  public var weights: [Double]
  /// The server's version (updates applied) the weights were taken at.
  public var version: UInt64
  /// Gradients the server had applied by then.
  public var gradientsApplied: UInt64
  /// The data the model was trained on, when known.
  public var dataset: DatasetIdentity?
  /// What wrote the file, e.g. `pstrain 0.1.0 train` (at most 255 bytes of UTF-8).
  public var createdBy: String

  /// A saved model.
  public init(
    model: ModelDescriptor, weights: [Double], version: UInt64, gradientsApplied: UInt64,
    dataset: DatasetIdentity?, createdBy: String
  ) {
    self.model = model
    self.weights = weights
    self.version = version
    self.gradientsApplied = gradientsApplied
    self.dataset = dataset
    self.createdBy = createdBy
  }
}

/// The saved-model file format: magic `PSMD`, a `u16` format version, the
/// fields little-endian, and a CRC-32 of all preceding bytes (the framing of
/// checkpoints; see docs/protocol.md, "Saved models"). A file that is
/// truncated, altered, of another format, or whose weights do not fit its
/// model is refused with the reason.
public enum SavedModelCodec {
  /// The format version written.
  public static let formatVersion: UInt16 = 1
  static let magic: [UInt8] = Array("PSMD".utf8)

  /// Why a saved-model file was refused.
  public enum Failure: Error, Equatable, CustomStringConvertible, ChecksummedFileFailure {
    case notASavedModel
    case unsupportedFormat(UInt16)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case malformed(String)

    public var description: String {
      switch self {
      case .notASavedModel: "not a pstrain saved model (bad magic bytes or too short)"
      case .unsupportedFormat(let version):
        "saved-model format \(version) is not supported (this build reads \(SavedModelCodec.formatVersion))"
      case .checksumMismatch(let stored, let computed):
        "checksum mismatch (stored \(String(stored, radix: 16)), computed \(String(computed, radix: 16))): the file is corrupt or truncated"
      case .malformed(let reason): "malformed saved model: \(reason)"
      }
    }
  }

  /// The saved model as file bytes. `saved.createdBy` is cut to
  /// `SavedModel.maximumCreatorLength` bytes (at a character boundary).
  public static func encode(_ saved: SavedModel) -> [UInt8] {
    ChecksummedFile.encode(magic: magic, format: formatVersion, saved)
  }

  /// Parses and verifies saved-model file bytes.
  public static func decode(_ bytes: [UInt8]) throws(Failure) -> SavedModel {
    try ChecksummedFile.decode(
      bytes, magic: magic, formats: 1...formatVersion, failure: Failure.self
    ) { reader, _ in try SavedModel.decode(from: &reader) }
  }
}

extension SavedModel: FileBody {
  /// `u32` descriptor size and the descriptor (as `join` carries it), `u64`
  /// weight count and the weights as Float64, `u64 version`, `u64 gradients
  /// applied`, `u8` dataset present (then `u64 rows`, `u64 fingerprint`),
  /// `str8 created by`.
  func encodeBody<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(UInt32(ByteCounter.size { model.encode(into: &$0) }))
    model.encode(into: &sink)
    sink.write(UInt64(weights.count))
    sink.write(float64Values: weights[...])
    sink.write(version)
    sink.write(gradientsApplied)
    sink.write(UInt8(dataset == nil ? 0 : 1))
    if let dataset {
      sink.write(dataset.rows)
      sink.write(dataset.fingerprint)
    }
    sink.write(Self.creator(createdBy), lengthAs: UInt8.self)
  }

  /// `text` cut to at most `maximumCreatorLength` UTF-8 bytes, whole characters.
  static func creator(_ text: String) -> String {
    var result = ""
    for character in text {
      guard result.utf8.count + character.utf8.count <= maximumCreatorLength else { break }
      result.append(character)
    }
    return result
  }

  /// The fields between the format version and the CRC; a `DecodeError` or a
  /// `SavedModelCodec.Failure` naming what does not fit.
  fileprivate static func decode(from reader: inout ByteReader) throws -> SavedModel {
    let modelLength = Int(try reader.read(UInt32.self, "model size"))
    var modelReader = ByteReader(try reader.readBytes(modelLength, "model"))
    let model = try ModelDescriptor.decode(from: &modelReader)
    try modelReader.expectEnd()
    let count = Int(clamping: try reader.read(UInt64.self, "weight count"))
    let expected = model.layout.totalCount
    guard count == expected else {
      throw SavedModelCodec.Failure.malformed(
        "\(count) weights, but the model \(model) has \(expected) parameters")
    }
    let weights = try reader.readFiniteArray(count: count, "weights")
    var offset = 0
    for spec in model.layout {
      if spec.elementType == .float32,
        let index = weights[offset..<(offset + spec.count)].firstIndex(where: {
          Double(Float($0)) != $0
        })
      {
        throw SavedModelCodec.Failure.malformed(
          "weight \(index) (\(weights[index])) of float32 tensor \(spec.name) is not a float32 value"
        )
      }
      offset += spec.count
    }
    let version = try reader.read(UInt64.self, "version")
    let applied = try reader.read(UInt64.self, "gradients applied")
    var dataset: DatasetIdentity?
    if try reader.readFlag("dataset present") {
      dataset = DatasetIdentity(
        rows: try reader.read(UInt64.self, "dataset rows"),
        fingerprint: try reader.read(UInt64.self, "dataset fingerprint"))
    }
    let createdBy = try reader.readString(
      lengthAs: UInt8.self, maximum: maximumCreatorLength, "created by")
    guard reader.remaining == 0 else {
      throw SavedModelCodec.Failure.malformed("\(reader.remaining) unexpected bytes")
    }
    return SavedModel(
      model: model, weights: weights, version: version, gradientsApplied: applied,
      dataset: dataset, createdBy: createdBy)
  }
}

extension SavedModelCodec.Failure {
  /// `ChecksummedFileFailure`'s name for `notASavedModel`.
  static var wrongMagic: Self { .notASavedModel }
}
