import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// A small relu MLP (4-6-3, 51 parameters: every coordinate is compared by the
/// finite differences) on generated data, trained in memory with every push audited.
struct ReplayRun {
  static let data = try! Dataset.generateClassification(features: 4, classes: 3, rows: 48, seed: 21)

  static func model(_ elementType: ElementType = .float64, activation: Activation = .relu)
    -> DenseNetwork
  {
    DenseNetwork(
      inputCount: 4, hiddenSizes: [6], outputCount: 3, activation: activation,
      loss: .crossEntropy, elementType: elementType)
  }

  /// Coordinate 48 is `layer2.bias[0]`: an output bias, never 0 on this data.
  static let coordinate = 48

  /// Trains `model` with `workers` workers (the first with `fault`) and returns
  /// every audit record and its report.
  static func run(
    model: DenseNetwork, workers count: Int = 1, fault: GradientFault = .none, epochs: Int = 2,
    batchSize: Int = 10, pipeline: Int = 1, checks: AuditChecks = .all
  ) throws -> (records: [AuditRecord], reports: [AuditReport]) {
    var initial = model.initialWeights(seed: 1)
    model.layout.roundToElementTypes(&initial)
    let server = ParameterServer(
      configuration: ServerConfiguration(
        mode: .async, requiredWorkers: count,
        optimizer: try OptimizerSettings(learningRate: 0.1),
        model: ModelCatalog.descriptor(of: model), initialParameters: initial))
    let workers = try (0..<count).map { index in
      try WorkerSession(
        workerID: UInt32(index),
        source: .shard(try Shard(index: index, count: count), epochs: epochs),
        dataset: data, model: model, batchSize: batchSize, pipeline: pipeline,
        fault: index == 0 ? fault : .none)
    }
    var records: [AuditRecord] = []
    let reports = try runInMemory(
      server: server, workers: workers, auditor: PeerID([9]),
      audit: { record in
        records.append(record)
        return try AuditReport.audit(record, checks: checks, tolerance: 1e-7, dataset: data)
      })
    return (records, reports)
  }
}

@Suite struct ReplayAuditTests {
  /// The pushes of real workers replay bit for bit: both element types, relu and
  /// tanh, pipelined, and with a short last batch (48 rows in batches of 10: the
  /// last batch of each shard has 8 rows or fewer, computed in the worker's
  /// 10-row workspace and replayed in one of exactly its rows).
  @Test(arguments: [ElementType.float64, .float32], [Activation.relu, .tanh])
  func cleanPushesAlwaysReplayExactly(elementType: ElementType, activation: Activation) throws {
    for (workers, pipeline) in [(1, 1), (2, 4)] {
      let (_, reports) = try ReplayRun.run(
        model: ReplayRun.model(elementType, activation: activation), workers: workers,
        epochs: 3, pipeline: pipeline, checks: .replay)
      #expect(reports.count >= 12)
      #expect(reports.contains { $0.sampleRows.count < 10 })
      for report in reports {
        #expect(report.passed, "\(report.text)")
        #expect(report.replay?.differingCount == 0)
      }
    }
  }

  /// Every bit of one coordinate of a real pushed gradient flipped: the replay
  /// catches all 64; the finite differences catch the sign, the exponent and the
  /// high mantissa bits (the table is printed, and recorded in docs/audits.md).
  @Test func everyFlippedBitIsCaughtByTheReplay() throws {
    let (records, reports) = try ReplayRun.run(model: ReplayRun.model())
    #expect(reports.allSatisfy { $0.passed })
    let record = records[records.count / 2]  // weights that have moved
    let k = ReplayRun.coordinate
    var caughtByDifferences: [Int] = []
    for bit in 0...63 {
      var flipped = record
      try GradientFault(parsing: "bitflip=\(k):\(bit)").corrupt(&flipped.gradient.values)
      let report = try AuditReport.audit(flipped, tolerance: 1e-7, dataset: ReplayRun.data)
      let replay = try #require(report.replay)
      #expect(!replay.passed && replay.mismatchCount == 1, "bit \(bit)")
      #expect(replay.first?.index == k && replay.first?.label == "layer2.bias[0]")
      #expect(report.confirmed, "bit \(bit): a second replay fails too")
      if report.failedChecks.contains(.finiteDifferences) { caughtByDifferences.append(bit) }
    }
    let value = record.gradient.values[k]
    print(
      "bitflip table: coordinate \(k) = \(value); finite differences catch bits \(ranges(caughtByDifferences)); replay catches 0...63"
    )
    // The sign and every exponent bit change the value by a factor of 2 or more.
    for bit in 52...63 { #expect(caughtByDifferences.contains(bit), "bit \(bit)") }
    // The lowest mantissa bits are far below the finite differences' tolerance.
    for bit in 0...20 { #expect(!caughtByDifferences.contains(bit), "bit \(bit)") }
  }

  /// "0...20, 29...63": `bits` as runs.
  func ranges(_ bits: [Int]) -> String {
    var runs: [String] = []
    var start: Int?
    var previous = -2
    for bit in bits + [Int.max] {
      if bit != previous + 1 {
        if let start { runs.append(start == previous ? "\(start)" : "\(start)...\(previous)") }
        start = bit
      }
      previous = bit
    }
    return runs.isEmpty ? "none" : runs.joined(separator: ", ")
  }

  /// A worker with `bitflip=K:B` pushes its gradient with exactly that bit
  /// flipped, on every push; the replay fails each, the other worker's pass.
  @Test(arguments: [0, 30, 63])
  func aBitflippingWorkerFailsTheReplay(bit: Int) throws {
    let fault = try GradientFault(parsing: "bitflip=\(ReplayRun.coordinate):\(bit)")
    let (records, reports) = try ReplayRun.run(
      model: ReplayRun.model(), workers: 2, fault: fault)
    for (record, report) in zip(records, reports) {
      if record.workerID == 0 {
        #expect(report.failedChecks.contains(.replay) && report.replayMismatches == 1)
        let replayed = report.replay!.first!.replayed
        #expect(
          replayed.bitPattern ^ record.gradient.values[ReplayRun.coordinate].bitPattern
            == UInt64(1) << UInt64(bit))
      } else {
        #expect(report.passed, "\(report.text)")
      }
    }
  }

  /// Other rows (`sample=1`) and stale weights (`stale=1`) fail the replay on
  /// every push they strike; the clean worker never does.
  @Test(arguments: ["sample=1", "stale=1"])
  func otherRowsAndStaleWeightsFailTheReplay(spec: String) throws {
    let (_, reports) = try ReplayRun.run(
      model: ReplayRun.model(), workers: 2, fault: try GradientFault(parsing: spec), epochs: 3)
    let faulty = reports.filter { $0.workerID == 0 }
    let failed = faulty.filter { $0.failedChecks.contains(.replay) }
    // stale=1 computes the first push at the only weights it has: the right ones.
    #expect(failed.count >= faulty.count - (spec == "stale=1" ? 1 : 0) && !failed.isEmpty)
    #expect(failed.allSatisfy { $0.confirmed && $0.replayMismatches > 0 })
    #expect(reports.filter { $0.workerID != 0 }.allSatisfy { $0.passed })
  }

  /// `after=V` strikes only pushes computed at version V or later; `rate=P` a
  /// deterministic fraction of them.
  @Test func afterAndRateChooseThePushesStruck() throws {
    let after = try GradientFault(parsing: "bitflip=3:40,after=6")
    let (_, late) = try ReplayRun.run(model: ReplayRun.model(), fault: after, epochs: 3)
    #expect(
      late.contains { $0.computedAtVersion < 6 } && late.contains { $0.computedAtVersion >= 6 })
    for report in late { #expect(report.passed == (report.computedAtVersion < 6)) }

    let rate = try GradientFault(parsing: "scale=2,rate=0.5")
    let (_, sampled) = try ReplayRun.run(model: ReplayRun.model(), fault: rate, epochs: 6)
    let struck = sampled.filter { !$0.passed }
    #expect(!struck.isEmpty && struck.count < sampled.count)
    for report in sampled {
      #expect(
        report.passed
          == !rate.strikes(
            workerID: 0, sequence: report.sequence, version: report.computedAtVersion))
    }
  }

  /// The coordinator's choice of checks: replay only, finite differences only.
  @Test func theCallerChoosesTheChecks() throws {
    let (records, _) = try ReplayRun.run(model: ReplayRun.model(), epochs: 1)
    var record = records[0]
    try GradientFault(parsing: "bitflip=0:2").corrupt(&record.gradient.values)
    let replayOnly = try AuditReport.audit(
      record, checks: .replay, tolerance: 1e-7, dataset: ReplayRun.data)
    #expect(replayOnly.audit == nil && replayOnly.failedChecks == .replay)
    #expect(replayOnly.json.contains("\"checks\":[\"replay\"],\"failed_checks\":[\"replay\"]"))
    let differencesOnly = try AuditReport.audit(
      record, checks: .finiteDifferences, tolerance: 1e-7, dataset: ReplayRun.data)
    #expect(differencesOnly.replay == nil && differencesOnly.passed)  // bit 2 is far below them
    #expect(differencesOnly.json.contains("\"replay\":null"))
    let rounding = try AuditReport.audit(
      record, checks: .replay, tolerance: 1e-7, replayMode: .rounding, dataset: ReplayRun.data)
    #expect(rounding.passed)  // 4 ulps is within rounding
    #expect(rounding.replay?.differingCount == 1)
  }
}

@Suite struct ConfirmationTests {
  func failedReport(confirm: Bool = true) throws -> AuditReport {
    let (records, _) = try ReplayRun.run(model: ReplayRun.model(), epochs: 1)
    var record = records[0]
    try GradientFault(parsing: "scale=1.001").corrupt(&record.gradient.values)
    return try AuditReport.audit(
      record, tolerance: 1e-7, confirm: confirm, dataset: ReplayRun.data)
  }

  /// A failure seen again by the second look is confirmed: the replay run again,
  /// the finite differences with a fresh seed (another direction).
  @Test func aRepeatedFailureIsConfirmed() throws {
    let report = try failedReport()
    #expect(report.failedChecks == [.finiteDifferences, .replay])
    let second = try #require(report.secondLook)
    #expect(second.failedChecks == [.finiteDifferences, .replay])
    #expect(report.confirmed)
    #expect(second.audit!.direction.analytic != report.audit!.direction.analytic)
    #expect(report.text.contains("\n  confirmed: a second look failed again"))
    #expect(report.json.contains("\"failed_checks\":[\"finite_differences\",\"replay\"]"))
    #expect(report.json.contains("\"confirmed\":true"))
    let result = CoordinatorLoop.result(of: report)
    #expect(
      !result.passed && result.confirmed && result.failedChecks == [.finiteDifferences, .replay])
    #expect(result.replayMismatches > 40 && result.appliedAtVersion == report.appliedAtVersion)
    #expect(try WireCodec.decode(WireCodec.encode(.auditResult(result))) == .auditResult(result))
  }

  /// A second look that passes leaves the failure reported, but not confirmed.
  @Test func aFailureTheSecondLookDoesNotSeeIsNotConfirmed() throws {
    var report = try failedReport()
    var second = try #require(report.secondLook)
    second.replay?.differingCount = 0
    second.replay?.mismatchCount = 0
    second.audit?.direction.crossesKink = true
    for index in second.audit!.coordinates.indices {
      second.audit!.coordinates[index].crossesKink = true
    }
    report.secondLook = second
    #expect(!report.passed && !report.confirmed)
    #expect(
      report.text.contains("\n  not confirmed: a second look (finite differences+replay) passed"))
    let result = CoordinatorLoop.result(of: report)
    #expect(!result.passed && !result.confirmed)
    let unconfirmed = try failedReport(confirm: false)
    #expect(unconfirmed.secondLook == nil && !unconfirmed.confirmed)
    #expect(unconfirmed.text.contains("\n  not confirmed: no second look taken"))
  }

  /// The tally counts failures per check, and the confirmed ones.
  @Test func theTallyCountsEachCheck() throws {
    var tally = AuditTally()
    let report = try failedReport()
    tally.add(report)
    var replayOnly = report
    replayOnly.audit = nil
    replayOnly.secondLook = nil
    tally.add(replayOnly)
    #expect(tally.failed == 2 && tally.failedFiniteDifferences == 1 && tally.failedReplays == 2)
    #expect(tally.confirmed == 1 && tally.replayed == 2)
    #expect(tally.json.contains("\"failed_checks\":{\"finite_differences\":1,\"replay\":2}"))
    #expect(tally.failuresText == "2 failed (finite differences 1, replay 2; 1 confirmed)")
  }
}

@Suite struct GradientFaultParsingTests {
  @Test func everyFormParsesAndCombines() throws {
    let fault = try GradientFault(
      parsing: "scale=2,flip=1,bitflip=3:63,bitflip=4:0,stale=2,sample=1,after=10,rate=0.25")
    #expect(fault.scale == 2 && fault.flipped == [1] && fault.staleness == 2)
    #expect(fault.bitFlips == [.init(coordinate: 3, bit: 63), .init(coordinate: 4, bit: 0)])
    #expect(fault.sampleShift == 1 && fault.afterVersion == 10 && fault.rate == 0.25)
    #expect(fault.highestCoordinate == 4)
    #expect(
      fault.description
        == "scale=2.0,flip=1,bitflip=3:63,bitflip=4:0,stale=2,sample=1,after=10,rate=0.25")
    #expect(try GradientFault(parsing: fault.description) == fault)
    #expect(try GradientFault(parsing: "after=5,rate=0.5").isNone)
  }

  @Test(arguments: [
    ("bitflip=3", "K:B"), ("bitflip=3:64", "0...63"), ("bitflip=-1:2", "K >= 0"),
    ("bitflip=a:b", "K:B"), ("sample=-1", "row shift"), ("after=-3", "version >= 0"),
    ("rate=0", "0 < P <= 1"), ("rate=1.5", "0 < P <= 1"), ("rate=x", "0 < P <= 1"),
    ("wobble=1", "known: scale=F, flip=K, bitflip=K:B"), ("bitflip", "key=value"),
  ])
  func badValuesSayTheAllowedForms(spec: String, says: String) {
    #expect {
      try GradientFault(parsing: spec)
    } throws: { error in
      "\(error)".contains(says)
    }
  }

  /// The draw is a function of the worker and the sequence: repeatable, near the
  /// rate asked for, different between workers, and never before `after`.
  @Test func rateAndAfterChooseDeterministically() throws {
    let fault = try GradientFault(parsing: "flip=0,rate=0.3,after=5")
    let struck = (1...10_000).filter {
      fault.strikes(workerID: 1, sequence: UInt64($0), version: 9)
    }
    #expect((2_700...3_300).contains(struck.count))
    #expect(
      struck == (1...10_000).filter { fault.strikes(workerID: 1, sequence: UInt64($0), version: 9) }
    )
    let other = (1...10_000).filter { fault.strikes(workerID: 2, sequence: UInt64($0), version: 9) }
    #expect(other != struck)
    #expect(!(1...100).contains { fault.strikes(workerID: 1, sequence: UInt64($0), version: 4) })
    #expect(!GradientFault.none.strikes(workerID: 0, sequence: 1, version: 1))
  }

  @Test func aBitflipBeyondTheModelIsRefused() throws {
    #expect(throws: RoleError.self) {
      try WorkerSession(
        workerID: 0, source: .shard(.whole, epochs: 1), dataset: .seed,
        model: ChainModel(layers: 3), fault: try GradientFault(parsing: "bitflip=3:1"))
    }
  }

  @Test func sampleShiftsRowsAroundTheData() throws {
    let fault = try GradientFault(parsing: "sample=1")
    #expect(fault.rowsRead(for: [0, 5, 9], datasetRows: 10) == [1, 6, 0])
    #expect(GradientFault.none.rowsRead(for: [3], datasetRows: 10) == [3])
  }
}
