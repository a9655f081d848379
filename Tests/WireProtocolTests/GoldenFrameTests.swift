import Foundation
import Testing
import TrainingMath
import WireProtocol

/// The golden frames in Tests/GoldenFrames, shared with the Python client's tests
/// (clients/python/tests/golden.py builds the same messages): the Swift codec must
/// encode each message to exactly those bytes (and frames) and decode them back, so
/// that neither codec drifts from the other unnoticed.
@Suite struct GoldenFrameTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("GoldenFrames")

  /// A zero, a negative zero, a subnormal, the largest finite and an inexact decimal.
  static let weight: [Double] = [0.5, -0.25, 0.0, -0.0, 5e-324, 1.7976931348623157e308]
  static let weightSpec = TensorSpec(name: "layer1.weight", shape: [3, 2])
  static let bias32 = TensorSpec(name: "layer1.bias", shape: [2], elementType: .float32)
  static let bias64 = TensorSpec(name: "layer1.bias", shape: [2])
  static let withBias32 = NamedTensors(
    layout: [weightSpec, bias32], values: weight + [0.15625, -2.5])
  static let withBias64 = NamedTensors(layout: [weightSpec, bias64], values: weight + [0.1, -3.0])

  static func shard(_ index: Int, _ count: Int) -> Shard {
    try! Shard(index: index, count: count)
  }

  static let push = GradientPush(
    workerID: 3, sequence: 5, computedAtVersion: 41, rows: [0, 7, 1346], gradient: withBias32)

  static func status(full: Bool) -> ServerStatus {
    var status = ServerStatus(
      mode: .async, version: 42, gradientsApplied: 40, rejected: 2, learningRate: 0.05,
      requiredWorkers: 1, modelName: "softmax", parameters: withBias64,
      workers: [
        WorkerStatus(
          workerID: 3, shard: shard(1, 4), pushesApplied: 5, lastSequence: 5, lastStaleness: 1)
      ], workersLeft: 1, auditRecordsSent: 7, datasetRows: 1347, optimizer: "sgd",
      currentLearningRate: 0.05, totalParameters: 8)
    guard full else { return status }
    status.mode = .ssp
    status.staleness = 2
    status.epochs = 3
    status.epoch = 1
    status.rowsAppliedInEpoch = 640
    status.workersDead = 1
    status.optimizer = "adam(lr 0.001, beta1 0.9)"
    status.currentLearningRate = 0.0005
    status.serverShard = shard(1, 2)
    status.parameterOffset = 8
    status.totalParameters = 16
    status.auditsReported = 9
    status.auditsFailed = 1
    status.lastAudit = AuditResult(
      workerID: 3, sequence: 5, passed: false, maximumRelativeError: 0.75, conclusive: true,
      gradientMagnitude: 2.5, appliedAtVersion: 40, failedChecks: [.finiteDifferences, .replay],
      replayMismatches: 4, confirmed: true)
    status.checkpoints = CheckpointHealth(
      durableVersion: 40, durableAgeMilliseconds: 1500, failures: 3, consecutiveFailures: 1,
      failingForMilliseconds: 200, lastError: "disk full: é", lastErrorAgeMilliseconds: 100)
    status.resume = ResumeStatus(
      checkpointFile: "checkpoint-40.pst", version: 40, gradientsApplied: 38, jobComplete: false,
      rowsToLease: 12,
      workers: [.init(workerID: 3, lastSequence: 4), .init(workerID: 9, lastSequence: 11)])
    status.lastEvaluation = EvaluationReport(
      version: 40, rows: 450, loss: 0.125, accuracy: 0.96, auc: nil)
    status.quarantine = QuarantineReport(
      enabled: true,
      workers: [
        QuarantinedWorker(
          workerID: 9, sequence: 12, failedChecks: .replay, maximumRelativeError: 0,
          replayMismatches: 2, quarantinedAtVersion: 39, rolledBackTo: 30)
      ], rollbacks: 1, versionsRolledBack: 9)
    status.keyedTable = KeyedTableStatus(
      modelName: "fm-8.h20", width: 9, rowsTouched: 100, rowBytes: 8000, bytesAllocated: 16384,
      pulls: 10, pushes: 9, keysPulled: 300, keysPushed: 270, keyCacheHits: 8, keyCacheMisses: 1,
      examples: 90, bytesReceived: 5000, bytesSent: 7000)
    return status
  }

  /// Each fixture: its name, the message, and the values-frame threshold it was cut
  /// with (nil: one frame).
  static let fixtures: [(name: String, message: WireMessage, threshold: Int?)] = [
    ("status-request", .statusRequest, nil),
    (
      "join",
      .join(
        Join(
          workerID: 3, shard: shard(1, 4),
          model: ModelDescriptor(name: "softmax", layout: [weightSpec, bias32]),
          dataset: DatasetIdentity(rows: 1347, fingerprint: 0x0123_4567_89AB_CDEF))), nil
    ),
    ("push", .push(push), nil),
    ("push-values-frames", .push(push), 16),
    (
      "weights",
      .weights(
        WeightsReply(
          version: 42, acknowledgedSequence: 5,
          appliedBelow: AppliedBitmap(words: [0x5, 0x8000_0000_0000_0000]),
          parameters: withBias32)), nil
    ),
    ("weights-values-frames", .weights(WeightsReply(version: 7, parameters: withBias64)), 16),
    ("leave", .leave(workerID: 3), nil),
    ("left", .left(workerID: 3), nil),
    ("heartbeat", .heartbeat(workerID: 3), nil),
    ("lease-request", .leaseRequest(workerID: 3), nil),
    (
      "lease",
      .lease(
        Lease(
          epoch: 2, firstRow: 64, rowCount: 32,
          weights: WeightsReply(
            version: 9, acknowledgedSequence: 4, appliedBelow: AppliedBitmap(words: [1]),
            parameters: withBias32))), nil
    ),
    ("no-lease", .noLease(NoLease(finished: false, retryAfterMilliseconds: 250)), nil),
    (
      "error",
      .error(
        ErrorReply(code: .layoutMismatch, message: "model softmax differs from the server's — ✓")),
      nil
    ),
    ("status", .status(status(full: false)), nil),
    ("status-full", .status(status(full: true)), nil),
  ]

  /// The frames of fixture `name`: NAME.bin, or NAME.0.bin, NAME.1.bin, ...
  static func frames(_ name: String) throws -> [[UInt8]] {
    let single = directory.appendingPathComponent("\(name).bin")
    if FileManager.default.fileExists(atPath: single.path) {
      return [Array(try Data(contentsOf: single))]
    }
    var frames: [[UInt8]] = []
    while true {
      let part = directory.appendingPathComponent("\(name).\(frames.count).bin")
      guard FileManager.default.fileExists(atPath: part.path) else { break }
      frames.append(Array(try Data(contentsOf: part)))
    }
    return frames
  }

  @Test(arguments: fixtures.map(\.name))
  func theSwiftCodecWritesAndReadsTheGoldenFrames(name: String) throws {
    let fixture = try #require(Self.fixtures.first { $0.name == name })
    let golden = try Self.frames(name)
    #expect(!golden.isEmpty, "no file for \(name) in \(Self.directory.path)")
    if let threshold = fixture.threshold {
      #expect(golden.count > 1)
      #expect(WireCodec.encodeFrames(fixture.message, threshold: threshold) == golden)
      #expect(WireCodec.encode(fixture.message) == Array(golden.joined()))
    } else {
      #expect(golden.count == 1)
      #expect(WireCodec.encode(fixture.message) == golden.first)
    }
    #expect(try WireCodec.decode(frames: golden) == fixture.message)
  }

  /// Every file in the folder belongs to a fixture (a renamed one is not left behind).
  @Test func everyGoldenFileIsAFixture() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
    let known = Set(Self.fixtures.map(\.name))
    for file in names where file.hasSuffix(".bin") {
      var stem = String(file.dropLast(4))
      if let dot = stem.lastIndex(of: "."), Int(stem[stem.index(after: dot)...]) != nil {
        stem = String(stem[..<dot])
      }
      #expect(known.contains(stem), "\(file) is no fixture")
    }
  }
}
