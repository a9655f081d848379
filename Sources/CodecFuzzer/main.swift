// The codec fuzzer. Built with libFuzzer:
//
//   swift build -c release --product codec-fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
//   .build/release/codec-fuzzer -runs=10000000 Tests/FuzzCorpus
//
// SwiftPM gives every executable its own `main`, so this one hands control to
// libFuzzer through `LLVMFuzzerRunDriver`. Built without -DFUZZING (as in a
// plain `swift build`), it replays the files named on its command line instead.
import Foundation
import TrainingMath
import WireProtocol

/// One input: decoding must either fail with a DecodeError or produce a message
/// that encodes back to exactly the same bytes; a checkpoint and a saved model likewise.
/// The previous input's message: decoding into it (as the server and worker
/// loops do) must give exactly what a fresh decode gives.
nonisolated(unsafe) var previous = WireMessage.push(.empty)

@inline(never)
func fuzzOne(_ bytes: UnsafeRawBufferPointer) {
  let fresh = Result(catching: { () throws(DecodeError) in try WireCodec.decode(bytes) })
  switch fresh {
  case .success(let message):
    let again = WireCodec.encode(message)
    if !again.elementsEqual(bytes) {
      fatalError("decode/encode is not the identity for \(message.type)")
    }
  case .failure:
    break
  }
  let reused = Result(catching: { () throws(DecodeError) in
    try WireCodec.decode(bytes, reusing: &previous)
  })
  switch (fresh, reused) {
  case (.success(let message), .success):
    if message != previous { fatalError("decoding into the previous message differs") }
  case (.failure(let error), .failure(let other)):
    if error != other { fatalError("decoding into the previous message fails differently") }
  default:
    fatalError("decoding into the previous message disagrees on validity")
  }
  // Frames: every tensor's values in a frame of their own decode to the same
  // message; and the input cut in two anywhere decodes to the same message, or
  // not at all (a cut adds rules, never a meaning).
  if case .success(let message) = fresh {
    let frames = WireCodec.encodeFrames(message, threshold: 1)
    if Array(frames.joined()) != Array(bytes) {
      fatalError("frames do not concatenate to the frame")
    }
    guard (try? WireCodec.decode(frames: frames)) == message else {
      fatalError("\(message.type) in \(frames.count) frames decodes differently")
    }
    // A push's values read in place are the values a copying decode gives.
    let inPlace = try? WireCodec.withFrames(frames) {
      (first, later) throws(DecodeError) -> WireMessage in
      var decoded = WireMessage.statusRequest
      var values: BorrowedValues?
      try WireCodec.decode(first, later: later, reusing: &decoded, pushValuesInPlace: &values)
      if let values, case .push(var push) = decoded {
        guard push.gradient.values.isEmpty else { fatalError("values both copied and in place") }
        push.gradient.values = values.copied()
        return .push(push)
      }
      return decoded
    }
    guard inPlace == message else { fatalError("\(message.type) decodes differently in place") }
  }
  if bytes.count > 1 {
    let cut = 1 + Int(bytes[bytes.count - 1]) % (bytes.count - 1)
    if let split = try? WireCodec.decode(frames: [Array(bytes[..<cut]), Array(bytes[cut...])]),
      (try? fresh.get()) != split
    {
      fatalError("a message cut in two decodes to something else")
    }
  }
  let array = Array(bytes)
  // Older formats are read and written back in the current one: identity holds
  // for the current format.
  let current = withUnsafeBytes(of: CheckpointCodec.formatVersion.littleEndian) { Array($0) }
  if let checkpoint = try? CheckpointCodec.decode(array), array.count > 6,
    Array(array[4..<6]) == current, CheckpointCodec.encode(checkpoint) != array
  {
    fatalError("checkpoint decode/encode is not the identity")
  }
  // A saved model has one format: identity holds for every file that decodes.
  if let saved = try? SavedModelCodec.decode(array), SavedModelCodec.encode(saved) != array {
    fatalError("saved-model decode/encode is not the identity")
  }
}

#if FUZZING
  typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

  @_silgen_name("LLVMFuzzerRunDriver")
  func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
  ) -> Int32

  var argc = CommandLine.argc
  var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
  exit(
    LLVMFuzzerRunDriver(&argc, &argv) { data, size in
      fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
      return 0
    })
#else
  /// `--write-seeds DIR`: one valid frame of every message type, a checkpoint
  /// and a saved model.
  func writeSeeds(to directory: String) throws {
    let layout = [TensorSpec(name: "w", count: 3)]
    let tensors = NamedTensors(layout: layout, values: [0.2333, -0.233, -0.52133])
    let model = ModelDescriptor(name: "chain", layout: layout)
    let rows = [0, 1]
    // A dense model's descriptor: tensors with shapes.
    let dense = ModelDescriptor(
      name: "mlp.relu",
      layout: [
        TensorSpec(name: "layer1.weight", shape: [2, 3]), TensorSpec(name: "layer1.bias", count: 3),
        TensorSpec(name: "layer2.weight", shape: [3, 2], elementType: .float32),
        TensorSpec(name: "layer2.bias", count: 2, elementType: .float32),
      ])
    let weights = WeightsReply(version: 3, acknowledgedSequence: 2, parameters: tensors)
    let messages: [WireMessage] = [
      .join(
        Join(
          workerID: 1, shard: try Shard(index: 1, count: 2), model: model,
          dataset: DatasetIdentity(rows: 2, fingerprint: 42))),
      .push(
        GradientPush(
          workerID: 1, sequence: 3, computedAtVersion: 2, rows: rows, gradient: tensors)),
      .join(
        Join(
          workerID: 2, shard: try Shard(index: 0, count: 1), model: dense,
          dataset: DatasetIdentity(rows: 1797, fingerprint: 7))),
      .weights(weights), .statusRequest,
      .status(
        ServerStatus(
          mode: .sync, version: 3, gradientsApplied: 6, rejected: 1, learningRate: 0.05,
          requiredWorkers: 2, modelName: "chain", parameters: tensors,
          workers: [
            WorkerStatus(
              workerID: 1, shard: try Shard(index: 1, count: 2), pushesApplied: 3, lastSequence: 3)
          ], workersLeft: 0, auditRecordsSent: 2, epochs: 4, epoch: 1, rowsAppliedInEpoch: 1,
          datasetRows: 2, workersDead: 0,
          checkpoints: CheckpointHealth(
            durableVersion: 2, durableAgeMilliseconds: 1500, failures: 2, consecutiveFailures: 1,
            failingForMilliseconds: 900, lastError: "cannot write x: No space left on device",
            lastErrorAgeMilliseconds: 900),

          resume: ResumeStatus(
            checkpointFile: "checkpoint-00000000000000000002.pstckpt", version: 2,
            gradientsApplied: 4, rowsToLease: 1,
            workers: [.init(workerID: 1, lastSequence: 2)]),
          lastEvaluation: EvaluationReport(version: 3, rows: 2, loss: 0.0125, accuracy: nil),
          quarantine: QuarantineReport(
            enabled: true,
            workers: [
              QuarantinedWorker(
                workerID: 2, sequence: 40, failedChecks: [.replay], maximumRelativeError: 1e-6,
                replayMismatches: 1, quarantinedAtVersion: 3, rolledBackTo: 1)
            ], rollbacks: 1, versionsRolledBack: 2),
          keyedTable: KeyedTableStatus(
            modelName: "fm-2.h20", width: 3, rowsTouched: 2, rowBytes: 2 * (8 + 24 + 24),
            bytesAllocated: 400, pulls: 2, pushes: 2, keysPulled: 4, keysPushed: 4,
            keyCacheHits: 1, keyCacheMisses: 0))),
      .auditSubscribe(
        AuditSubscription(every: 10, leaseMilliseconds: 6000, probability: 0.02, seed: 7)),
      .subscription(SubscriptionState(every: 10, recordsSent: 4, recordsDropped: 0)),
      .auditRecord(
        AuditRecord(
          workerID: 1, sequence: 3, computedAtVersion: 2, appliedAtVersion: 3, modelName: "chain",
          weights: tensors, dataset: DatasetIdentity(rows: 2, fingerprint: 42), rows: rows,
          gradient: tensors)),
      .leave(workerID: 1), .left(workerID: 1),
      .error(ErrorReply(code: .replayed, message: "push 3 was already applied")),
      .heartbeat(workerID: 1), .leaseRequest(workerID: 1),
      .lease(Lease(epoch: 1, firstRow: 0, rowCount: 2, weights: weights)),
      .noLease(NoLease(finished: false, retryAfterMilliseconds: 50)),
      .auditResult(
        AuditResult(workerID: 1, sequence: 3, passed: true, maximumRelativeError: 4.5e-12)),
      .auditResult(
        AuditResult(
          workerID: 2, sequence: 40, passed: false, maximumRelativeError: 1e-6,
          appliedAtVersion: 41, failedChecks: [.finiteDifferences, .replay], replayMismatches: 9,
          confirmed: true)),
      .pushes([
        GradientPush(
          workerID: 1, sequence: 4, computedAtVersion: 3, rows: [0], gradient: tensors),
        GradientPush(
          workerID: 1, sequence: 5, computedAtVersion: 3, rows: [1], gradient: tensors),
      ]),
      // A classifier's, with an accuracy, and a regression model's, without.
      .evaluation(EvaluationReport(version: 40, rows: 360, loss: 0.31, accuracy: 0.9125)),
      .evaluation(EvaluationReport(version: 3, rows: 2, loss: 0.0125, accuracy: nil, auc: 0.75)),
      // Sparse models: a pull that caches its keys, the rows, a push naming the
      // cached list, its acknowledgement, and the audit record of the push.
      .sparsePull(SparsePull(workerID: 1, sequence: 3, keys: .keys([2, 9, 1 << 20], cacheAs: 1))),
      .sparseRows(
        SparseRows(
          version: 2, sequence: 3, width: 3, values: [0, 0.125, -0.5, 0.25, 0, 1, -1, 2, 3])),
      .sparsePush(
        SparsePush(
          workerID: 1, sequence: 3, computedAtVersion: 2, rows: rows,
          keys: .cached(id: 1, count: 3),
          gradients: [0.5, -0.25, 0.125, 1, 2, 3, -4, 0, 0.75])),
      .sparseAck(SparseAck(version: 3, sequence: 3)),
      .sparseAuditRecord(
        SparseAuditRecord(
          workerID: 1, sequence: 3, computedAtVersion: 2, appliedAtVersion: 3,
          modelName: "fm-2.h20", dataset: DatasetIdentity(rows: 2, fingerprint: 42), rows: rows,
          serverShard: try Shard(index: 0, count: 2), keys: [2, 9, 1 << 20],
          values: [0, 0.125, -0.5, 0.25, 0, 1, -1, 2, 3],
          gradients: [0.5, -0.25, 0.125, 1, 2, 3, -4, 0, 0.75])),
    ]
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var seen: [String: Int] = [:]
    for message in messages {
      // A second seed of a type is named `type-2`.
      let type = "\(message.type)"
      seen[type, default: 0] += 1
      let name = seen[type]! == 1 ? type : "\(type)-\(seen[type]!)"
      try Data(WireCodec.encode(message)).write(to: URL(fileURLWithPath: "\(directory)/\(name)"))
    }
    let checkpoint = ServerCheckpoint(
      mode: .async,
      optimizer: Optimizer(
        settings: try OptimizerSettings(
          kind: .adam, learningRate: 0.001, schedule: .cosine(total: 100, minimum: 0)),
        parameterCount: 3),
      requiredWorkers: 1, model: model, version: 3,
      gradientsApplied: 3, rejected: 0, parameters: tensors.values,
      sequences: [.init(workerID: 1, sequence: 3)],
      dataset: DatasetIdentity(rows: 2, fingerprint: 42),
      work: .init(epochs: 4, chunkRows: 1, epoch: 1, nextRows: [1, 1]))
    try Data(CheckpointCodec.encode(checkpoint)).write(
      to: URL(fileURLWithPath: "\(directory)/checkpoint"))
    let saved = SavedModel(
      model: dense, weights: (0..<17).map { Double(Float(Double($0) / 8 - 1)) }, version: 3,
      gradientsApplied: 6, dataset: DatasetIdentity(rows: 1797, fingerprint: 7),
      createdBy: "pstrain 0.1.0 train")
    try Data(SavedModelCodec.encode(saved)).write(
      to: URL(fileURLWithPath: "\(directory)/saved-model"))
    print("wrote \(messages.count + 2) seeds to \(directory)")
  }

  if CommandLine.arguments.count == 3, CommandLine.arguments[1] == "--write-seeds" {
    do { try writeSeeds(to: CommandLine.arguments[2]) } catch {
      print("codec-fuzzer: \(error)")
      exit(1)
    }
    exit(0)
  }

  var replayed = 0
  for path in CommandLine.arguments.dropFirst() {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
    let files =
      isDirectory.boolValue
      ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).map { path + "/" + $0 }
      : [path]
    for file in files {
      guard let data = FileManager.default.contents(atPath: file) else { continue }
      data.withUnsafeBytes { fuzzOne($0) }
      replayed += 1
    }
  }
  print("replayed \(replayed) inputs without a failure")
#endif
