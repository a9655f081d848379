import Foundation
import Roles
import TrainingMath

/// `bench sparse --memory`: what a keyed table costs. R random keys drawn from
/// a 2^40 key space are pushed once into a table of V values per row (AdaGrad:
/// V state values too); the table's own count of row bytes is set against the
/// resident memory the process grew by to hold it.
enum SparseMemoryBenchmark {
  /// What was measured.
  struct Result {
    var rows: Int
    var valueLength: Int
    /// `KeyedTable.rowBytes`: key, values and state of every row.
    var rowBytes: Int
    /// The growth of resident memory (VmRSS) while the table filled: the
    /// bytes allocated for it, index and spare capacity included.
    var bytesAllocated: Double
    /// The process's peak resident memory (VmHWM).
    var peakResident: Double

    var ratio: Double { rowBytes > 0 ? bytesAllocated / Double(rowBytes) : 0 }

    var json: String {
      "{\"rows\":\(rows),\"value_length\":\(valueLength),\"row_bytes\":\(rowBytes),"
        + "\"bytes_allocated\":\(JSON.number(bytesAllocated)),\"ratio\":\(JSON.number(ratio)),"
        + "\"peak_rss\":\(JSON.number(peakResident))}"
    }
  }

  /// Fills the table in batches of 10,000 keys, as pushes would.
  static func run(rows: Int, valueLength: Int) -> Result {
    let pid = ProcessInfo.processInfo.processIdentifier
    var generator = SplitMix64(seed: 40)
    var keys = (0..<rows).map { _ in generator.next() >> 24 }
    keys.sort()
    var unique = 0
    for key in keys where unique == 0 || key != keys[unique - 1] {
      keys[unique] = key
      unique += 1
    }
    keys.removeLast(keys.count - unique)
    let before = MemoryBenchmark.residentMemory(of: pid).current
    var table = KeyedTable(
      width: valueLength, optimizer: SparseOptimizerSettings(kind: .adagrad, learningRate: 0.05),
      initialization: .zero)
    // Rows are created as pushes create them, 10,000 keys a push, in a random order.
    var order = SplitMix64(seed: 41)
    let zeros = [Double](repeating: 0, count: 10_000 * valueLength)
    for start in stride(from: 0, to: keys.count, by: 10_000) {
      let end = min(keys.count, start + 10_000)
      let batch = keys[start..<end].shuffled(using: &order)
      table.apply(batch, gradients: Array(zeros[0..<(batch.count * valueLength)]))
    }
    let (after, peak) = MemoryBenchmark.residentMemory(of: pid)
    let result = Result(
      rows: table.count, valueLength: valueLength, rowBytes: table.rowBytes,
      bytesAllocated: max(0, after - before), peakResident: peak)
    withExtendedLifetime(table) {}
    return result
  }

  /// The figures of `run`.
  static func figures(_ result: Result) -> [BenchFigure] {
    [
      BenchFigure(
        suite: "sparse-memory",
        name: "keyed table of \(result.rows) rows x \(result.valueLength) values (2^40 key space)",
        value: result.bytesAllocated / 1e6, unit: "MB resident growth",
        baseline: Double(result.rowBytes) / 1e6, baselineName: "row bytes (key + values + state)",
        higherIsBetter: false,
        note: String(
          format: "ratio = row bytes / resident growth; %.1f bytes per row; peak RSS %.1f MB",
          result.bytesAllocated / Double(max(1, result.rows)), result.peakResident / 1e6))
    ]
  }
}
