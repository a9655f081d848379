import Testing
import TrainingMath

@testable import WireProtocol

/// The saved-model file format: what is written reads back, and damaged or
/// hostile files are refused with the reason.
@Suite struct SavedModelTests {
  static let chain = SavedModel(
    model: ModelDescriptor(name: "chain", layout: [TensorSpec(name: "w", count: 3)]),
    weights: [0.2333, -0.233, -0.52133], version: 100, gradientsApplied: 200,
    dataset: DatasetIdentity(rows: 2, fingerprint: 42), createdBy: "pstrain 0.1.0 train")

  static let dense = SavedModel(
    model: ModelDescriptor(
      name: "mlp.relu",
      layout: [
        TensorSpec(name: "layer1.weight", shape: [2, 3]),
        TensorSpec(name: "layer1.bias", count: 3),
        TensorSpec(name: "layer2.weight", shape: [3, 2], elementType: .float32),
        TensorSpec(name: "layer2.bias", count: 2, elementType: .float32),
      ]),
    weights: (0..<17).map { Double(Float(Double($0) * 0.1 - 0.8)) }, version: 0,
    gradientsApplied: 0, dataset: nil, createdBy: "test — ü")

  /// `body` (magic to the last field) with its CRC-32 appended, as a writer would.
  func sealed(_ body: some Collection<UInt8>) -> [UInt8] {
    let crc = CRC32.checksum(Array(body))
    return Array(body) + (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * $0)) }
  }

  func failure(_ bytes: [UInt8]) -> SavedModelCodec.Failure? {
    do {
      _ = try SavedModelCodec.decode(bytes)
      return nil
    } catch {
      return error
    }
  }

  @Test(arguments: [chain, dense])
  func roundTrips(_ saved: SavedModel) throws {
    let bytes = SavedModelCodec.encode(saved)
    #expect(Array(bytes.prefix(6)) == Array("PSMD".utf8) + [1, 0])
    #expect(try SavedModelCodec.decode(bytes) == saved)
  }

  @Test func shapesAndElementTypesSurvive() throws {
    let decoded = try SavedModelCodec.decode(SavedModelCodec.encode(Self.dense))
    #expect(decoded.model.layout.map(\.shape) == [[2, 3], [3], [3, 2], [2]])
    #expect(decoded.model.layout.map(\.elementType) == [.float64, .float64, .float32, .float32])
  }

  @Test func everyTruncationIsRefused() {
    let bytes = SavedModelCodec.encode(Self.chain)
    for length in 0..<bytes.count {
      #expect(failure(Array(bytes.prefix(length))) != nil, "\(length) bytes")
    }
  }

  @Test func everyFlippedBitIsRefused() {
    let bytes = SavedModelCodec.encode(Self.dense)
    for index in bytes.indices {
      for bit in 0..<8 {
        var altered = bytes
        altered[index] ^= 1 << bit
        #expect(failure(altered) != nil, "byte \(index) bit \(bit)")
      }
    }
    var altered = bytes
    altered[20] ^= 1
    guard case .checksumMismatch = failure(altered) else {
      Issue.record("an altered byte was not a checksum mismatch")
      return
    }
  }

  @Test func otherFilesAndFormatsAreRefusedByName() {
    #expect(failure([]) == .notASavedModel)
    #expect(failure(Array("PSCK".utf8) + [3, 0, 0, 0, 0, 0]) == .notASavedModel)
    var bytes = SavedModelCodec.encode(Self.chain)
    bytes[4] = 2
    #expect(failure(sealed(bytes.dropLast(4))) == .unsupportedFormat(2))
    #expect("\(SavedModelCodec.Failure.unsupportedFormat(2))".contains("format 2"))
    // A saved model is not a checkpoint either.
    #expect(throws: CheckpointCodec.Failure.notACheckpoint) {
      try CheckpointCodec.decode(SavedModelCodec.encode(Self.chain))
    }
  }

  @Test func nonFiniteWeightsAreRefused() {
    for bad in [Double.nan, .infinity, -.infinity] {
      var saved = Self.chain
      saved.weights[1] = bad
      let refusal = failure(SavedModelCodec.encode(saved))
      #expect(refusal == .malformed("weights[1] is NaN or infinite"), "\(bad)")
    }
  }

  @Test func weightsThatDoNotFitTheLayoutAreRefused() {
    var short = Self.chain
    short.weights.removeLast()
    #expect(
      failure(SavedModelCodec.encode(short))
        == .malformed("2 weights, but the model chain(w[3]) has 3 parameters"))
    var long = Self.chain
    long.weights.append(1)
    #expect(failure(SavedModelCodec.encode(long)) != nil)
    var unrounded = Self.dense
    unrounded.weights[15] = 0.1
    let refusal = failure(SavedModelCodec.encode(unrounded))
    #expect("\(refusal.map(String.init(describing:)) ?? "")".contains("float32 tensor layer2.bias"))
  }

  @Test func trailingBytesAndBadFieldsAreRefused() {
    let bytes = SavedModelCodec.encode(Self.chain)
    #expect(
      failure(sealed(bytes.dropLast(4) + [0])) == .malformed("1 unexpected bytes"))
    // The dataset flag (after magic, format, model, count, weights, version, applied) must be 0 or 1.
    let flag = bytes.count - 4 - (1 + Self.chain.createdBy.utf8.count) - 16 - 1
    var altered = Array(bytes.dropLast(4))
    altered[flag] = 2
    #expect("\(failure(sealed(altered))!)".contains("dataset present"))
  }

  @Test func aLongCreatorIsCutAtACharacterBoundary() throws {
    var saved = Self.chain
    saved.createdBy = String(repeating: "é", count: 200)
    let decoded = try SavedModelCodec.decode(SavedModelCodec.encode(saved))
    #expect(decoded.createdBy == String(repeating: "é", count: 127))
  }

  /// A dense network saved and read back is the same network: rebuilt from
  /// the file's name and layout, it measures the same loss bit for bit.
  @Test func aDenseNetworkSurvivesTheFile() throws {
    let network = DenseNetwork(
      inputCount: 3, hiddenSizes: [4], outputCount: 2, activation: .relu, loss: .crossEntropy)
    let weights = network.initialWeights(seed: 9)
    let saved = SavedModel(
      model: ModelDescriptor(name: network.name, layout: network.layout), weights: weights,
      version: 7, gradientsApplied: 7, dataset: nil, createdBy: "test")
    let decoded = try SavedModelCodec.decode(SavedModelCodec.encode(saved))
    let rebuilt = try DenseNetwork(named: decoded.model.name, layout: decoded.model.layout)
    let data = try Dataset.generateClassification(features: 3, classes: 2, rows: 20, seed: 1)
    let before = Objective(model: network).evaluate(weights: weights, dataset: data)
    let after = Objective(model: rebuilt).evaluate(weights: decoded.weights, dataset: data)
    #expect(after == before)
  }
}
