import Foundation
import SystemCalls
import Testing
import WireProtocol

@testable import Roles

/// The server's TensorBoard cadence with a made-up clock, and the event file on disk.
@Suite struct TensorBoardWriterTests {
  func tags(_ point: (step: UInt64, scalars: [TensorBoardEvent.Scalar])?) -> [String] {
    point?.scalars.map(\.tag) ?? []
  }

  func value(_ tag: String, in point: (step: UInt64, scalars: [TensorBoardEvent.Scalar])?)
    -> Float?
  {
    point?.scalars.first { $0.tag == tag }?.value
  }

  @Test func theServerWritesOncePerPeriodWhileTheVersionMoves() throws {
    var cadence = ServerScalarCadence(periodMilliseconds: 1000)
    cadence.start(now: 10_000, version: 0, samples: 0)
    cadence.observe(staleness: [0, 2, 4])
    // Before the period is over: nothing.
    #expect(cadence.due(now: 10_999, version: 3, samples: 30, learningRate: 0.1) == nil)
    let first = cadence.due(now: 12_000, version: 3, samples: 60, learningRate: 0.1)
    #expect(first?.step == 3)
    #expect(
      tags(first) == [
        TensorBoardScalars.samplesPerSecond, TensorBoardScalars.stalenessMean,
        TensorBoardScalars.stalenessMax, TensorBoardScalars.learningRate,
      ])
    // 60 rows in 2 s.
    #expect(value(TensorBoardScalars.samplesPerSecond, in: first) == 30)
    #expect(value(TensorBoardScalars.stalenessMean, in: first) == 2)
    #expect(value(TensorBoardScalars.stalenessMax, in: first) == 4)
    #expect(value(TensorBoardScalars.learningRate, in: first) == 0.1)
    // A period later, the version has not moved: no point (an idle server draws no line).
    #expect(cadence.due(now: 14_000, version: 3, samples: 60, learningRate: 0.1) == nil)
    // It moved, without staleness samples (a restored server): throughput and rate only.
    let second = cadence.due(now: 14_500, version: 5, samples: 160, learningRate: 0.05)
    #expect(second?.step == 5)
    #expect(tags(second) == [TensorBoardScalars.samplesPerSecond, TensorBoardScalars.learningRate])
    // 100 rows since the last point, 2.5 s ago.
    #expect(value(TensorBoardScalars.samplesPerSecond, in: second) == 40)
  }

  @Test func theFinalPointIsWrittenAtOnceIfTheVersionMoved() {
    var cadence = ServerScalarCadence(periodMilliseconds: 1000)
    cadence.start(now: 0, version: 0, samples: 0)
    #expect(cadence.due(now: 10, version: 0, samples: 0, learningRate: 1, final: true) == nil)
    cadence.observe(staleness: [1])
    let last = cadence.due(now: 250, version: 7, samples: 70, learningRate: 1, final: true)
    #expect(last?.step == 7)
    #expect(value(TensorBoardScalars.samplesPerSecond, in: last) == 280)
  }

  static func temporaryDirectory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-tensorboard-\(UUID().uuidString)"
    ).path
  }

  @Test func anEventFileHoldsTheVersionThenEachWrite() throws {
    let directory = Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var warnings: [String] = []
    let file = try TensorBoardEventFile(
      logDirectory: directory + "/nested", run: "server", warn: { warnings.append($0) })
    file.write(step: 3, [.init(tag: "loss/test", value: 0.5)])
    file.write(step: 4, [])  // nothing to write: no event
    file.write(step: 5, [.init(tag: "loss/test", value: 0.25)])
    file.close()
    file.write(step: 6, [.init(tag: "loss/test", value: 0.125)])  // closed: dropped quietly
    #expect(file.eventsWritten == 3)
    #expect(warnings.isEmpty)
    let name = try #require(file.path.split(separator: "/").last)
    // events.out.tfevents.SECONDS.HOST.PID.0
    #expect(name.hasPrefix("events.out.tfevents."))
    #expect(name.hasSuffix(".\(ProcessControl.hostName).\(ProcessControl.id).0"))
    #expect(file.path.hasPrefix(directory + "/nested/server/"))
    let records = try TFRecord.records(in: FileIO.read(file.path))
    #expect(records.count == 3)
    // The first event's only other field is the wall time (tag 9, 8 bytes).
    #expect(Array(records[0].dropFirst(9)) == [26, 13] + Array("brain.Event:2".utf8))
    #expect(records[1].starts(with: [9]))
    #expect(
      Array(records[2].dropFirst(9))
        == TensorBoardEvent(
          wallTime: 0, step: 5, content: .scalars([.init(tag: "loss/test", value: 0.25)])
        ).encoded)
  }

  @Test func twoFilesOfOneProcessInOneRunGetTheirOwnNames() throws {
    let directory = Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let first = try TensorBoardEventFile(logDirectory: directory, run: "run", warn: { _ in })
    let second = try TensorBoardEventFile(logDirectory: directory, run: "run", warn: { _ in })
    #expect(first.path != second.path)
    #expect(try FileIO.names(inDirectory: directory + "/run").count == 2)
  }

  @Test func aDirectoryThatCannotBeMadeIsRefusedAtOnce() throws {
    let directory = Self.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try FileIO.makeDirectories(directory)
    try FileIO.overwrite([1], at: directory + "/file")
    let error = #expect(throws: SystemCallError.self) {
      try TensorBoardEventFile(
        logDirectory: directory + "/file/logs", run: "server", warn: { _ in })
    }
    #expect(error?.description.contains("Not a directory") == true, "\(String(describing: error))")
    #expect(throws: SystemCallError.self) {
      try TensorBoardEventFile.checkWritable(logDirectory: directory + "/file")
    }
    try TensorBoardEventFile.checkWritable(logDirectory: directory + "/fine")
    #expect(try FileIO.names(inDirectory: directory + "/fine").isEmpty)
  }
}
