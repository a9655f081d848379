import ArgumentParser
import Foundation
import Roles
import TrainingMath
import WireProtocol

/// `pstrain bench`: speed and memory figures against baselines measured in the same run.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Measure speed and memory against raw libzmq and the naive algorithm, in one run.",
    discussion: """
      Suites: roundtrip, pipelined, transfer, backprop, audit, memory, checkpoint, model
      (default: all). `model` times forward + backward of one worker thread on --model over
      --features, --classes and --batch-size, against plain Swift loops and the same BLAS's
      matrix products on the same shapes; `bench model --json` prints one object with
      samples_per_s. `sparse` times a sparse-pull of --keys sorted random keys of
      --value-length values and the sparse-push of their gradient rows on the cached key list,
      against raw libzmq moving the same bytes; `bench sparse --memory` fills a keyed table
      with --rows random keys of a 2^40 key space and prints its row bytes against the
      resident memory it took; `bench sparse --json` prints one object. Build
      with -c release for meaningful figures: swift run -c release pstrain bench.
      Each figure is printed with the baseline measured in the same run and their ratio
      (> 1 means pstrain does better, except where a note says otherwise).
      """)

  enum Suite: String, ExpressibleByArgument, CaseIterable {
    case roundtrip, pipelined, transfer, backprop, audit, memory, checkpoint, model, sparse
  }

  @Argument(help: "Suites to run (default: all).")
  var suites: [Suite] = []

  @Flag(help: "Shorter runs, for a smoke test.")
  var quick = false

  @Flag(help: "Print one JSON array of figures (bench model alone: one object).")
  var json = false

  @Option(help: "model: the model (linear, softmax, mlp:H1[,H2,...]).")
  var model: String = "mlp:128"

  @Option(help: "model: features per example.")
  var features: Int = 64

  @Option(help: "model: classes.")
  var classes: Int = 10

  @Option(help: "model: examples per batch.")
  var batchSize: Int = 32

  @Option(help: "model: float64 or float32.")
  var dtype: ServerTrainingOptions.DType = .float64

  @Option(help: "model: the activation between an MLP's layers.")
  var activation: Activation = .relu

  @Option(help: "sparse: keys per pull and push.")
  var keys: Int = 10_000

  @Option(help: "sparse: values per key (the row width).")
  var valueLength: Int = 8

  @Flag(help: "sparse: measure a keyed table's memory instead of round trips.")
  var memory = false

  @Option(help: "sparse --memory: rows to fill the table with.")
  var rows: Int = 1_000_000

  func validate() throws {
    guard (1...SparseLimits.maximumKeys).contains(keys) else {
      throw ValidationError("--keys must be 1...\(SparseLimits.maximumKeys)")
    }
    guard (1...SparseLimits.maximumWidth).contains(valueLength) else {
      throw ValidationError("--value-length must be 1...\(SparseLimits.maximumWidth)")
    }
    guard (1...1_000_000_000).contains(rows) else {
      throw ValidationError("--rows must be 1...1000000000")
    }
    guard (1...1_000_000).contains(features) else {
      throw ValidationError("--features must be 1...1000000")
    }
    guard (2...100_000).contains(classes) else {
      throw ValidationError("--classes must be 2...100000")
    }
    guard (1...65_536).contains(batchSize) else {
      throw ValidationError("--batch-size must be 1...65536")
    }
    do { _ = try ModelSpec(parsing: model, activation: activation) } catch {
      throw ValidationError("--model: \(error)")
    }
  }

  /// The `model` suite's figures, and its one JSON object.
  func modelFigures() throws -> (figures: [BenchFigure], json: String) {
    let spec = try ModelSpec(parsing: model, activation: activation)
    let built = try spec.model(
      features: features, classes: classes, elementType: dtype.elementType)
    let result = try ModelBenchmark.run(
      ModelBenchmark.Settings(model: built, batchSize: batchSize, seconds: quick ? 0.3 : 2))
    let shape = "\(model) \(features)->\(classes) \(dtype.rawValue), batch \(batchSize)"
    var figures = [
      BenchFigure(
        suite: "model", name: "forward+backward \(shape)", value: result.samplesPerSecond,
        unit: "samples/s", baseline: result.naiveSamplesPerSecond,
        baselineName: "naive Swift loops",
        note: "one thread; \(String(format: "%.2f", result.passGigaflops)) GFLOP/s")
    ]
    if let gemm = result.gemmSamplesPerSecond {
      figures.append(
        BenchFigure(
          suite: "model", name: "forward+backward \(shape)", value: result.samplesPerSecond,
          unit: "samples/s", baseline: gemm, baselineName: "its matrix products alone",
          note:
            "ratio = share of the GEMM-only rate reached; GEMMs at \(String(format: "%.2f", result.gemmGigaflops ?? 0)) GFLOP/s"
        ))
    }
    let json =
      "{\"model\":\(JSON.string(model)),\"features\":\(features),\"classes\":\(classes),"
      + "\"batch_size\":\(batchSize),\"dtype\":\"\(dtype.rawValue)\","
      + String(result.json.dropFirst())
    return (figures, json)
  }

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
        case .sparse:
          let alone = json && suites == [.sparse]
          if memory {
            let result = SparseMemoryBenchmark.run(rows: rows, valueLength: valueLength)
            if alone {
              print(result.json)
              return
            }
            found = SparseMemoryBenchmark.figures(result)
          } else {
            let result = try SparseBenchmark.run(keys: keys, valueLength: valueLength, quick: quick)
            if alone {
              print(result.json)
              return
            }
            found = SparseBenchmark.figures(result)
          }
        case .model:
          let (modelFound, object) = try modelFigures()
          if json && suites == [.model] {
            print(object)
            return
          }
          found = modelFound
        }
        if !json { for figure in found { print(figure.text) } }
        figures += found
      }
      if json { print("[" + figures.map(\.json).joined(separator: ",") + "]") }
    }
  }
}
