import ArgumentParser
import Foundation
import Roles

/// `pstrain bench`: speed and memory figures against baselines measured in the same run.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Measure speed and memory against raw libzmq and the naive algorithm, in one run.",
    discussion: """
      Suites: roundtrip, pipelined, transfer, backprop, audit, memory, checkpoint (default:
      all). Build
      with -c release for meaningful figures: swift run -c release pstrain bench.
      Each figure is printed with the baseline measured in the same run and their ratio
      (> 1 means pstrain does better, except where a note says otherwise).
      """)

  enum Suite: String, ExpressibleByArgument, CaseIterable {
    case roundtrip, pipelined, transfer, backprop, audit, memory, checkpoint
  }

  @Argument(help: "Suites to run (default: all).")
  var suites: [Suite] = []

  @Flag(help: "Shorter runs, for a smoke test.")
  var quick = false

  @Flag(help: "Print one JSON array of figures.")
  var json = false

  func run() throws {
    try runReportingErrors {
      var figures: [BenchFigure] = []
      for suite in suites.isEmpty ? Suite.allCases : suites {
        if !json { print("\(suite.rawValue):") }
        let found: [BenchFigure]
        switch suite {
        case .roundtrip: found = try NetworkBenchmarks.roundTrip(quick: quick)
        case .pipelined: found = try NetworkBenchmarks.pipelined(quick: quick)
        case .transfer: found = try NetworkBenchmarks.transfer(quick: quick)
        case .backprop: found = ComputeBenchmarks.backprop(quick: quick)
        case .audit: found = ComputeBenchmarks.audit(quick: quick)
        case .memory: found = try MemoryBenchmark.memory(quick: quick)
        case .checkpoint: found = try CheckpointBenchmark.checkpoints(quick: quick)
        }
        if !json { for figure in found { print(figure.text) } }
        figures += found
      }
      if json { print("[" + figures.map(\.json).joined(separator: ",") + "]") }
    }
  }
}
