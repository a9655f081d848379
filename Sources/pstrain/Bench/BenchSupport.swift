import Foundation
import Roles
import Synchronization
import SystemCalls

/// One measured figure and, when there is one, the baseline it is compared with
/// in the same run.
struct BenchFigure {
  var suite: String
  var name: String
  var value: Double
  var unit: String
  var baseline: Double?
  var baselineName: String?
  /// value / baseline, oriented so that > 1 means pstrain is better when `higherIsBetter`.
  var higherIsBetter = true
  var note: String?

  var ratio: Double? {
    guard let baseline, baseline > 0, value > 0 else { return nil }
    return higherIsBetter ? value / baseline : baseline / value
  }

  var text: String {
    var line = "  \(name): \(Self.format(value)) \(unit)"
    if let baseline, let baselineName {
      line += "   vs \(baselineName) \(Self.format(baseline)) \(unit)"
      if let ratio { line += "   ratio \(String(format: "%.3g", ratio))x" }
    }
    if let note { line += "   (\(note))" }
    return line
  }

  var json: String {
    "{\"suite\":\(JSON.string(suite)),\"name\":\(JSON.string(name)),\"value\":\(JSON.number(value)),"
      + "\"unit\":\(JSON.string(unit)),\"baseline\":\(baseline.map(JSON.number) ?? "null"),"
      + "\"baseline_name\":\(baselineName.map(JSON.string) ?? "null"),"
      + "\"ratio\":\(ratio.map(JSON.number) ?? "null"),\"note\":\(note.map(JSON.string) ?? "null")}"
  }

  static func format(_ value: Double) -> String {
    if value >= 100 { return String(format: "%.0f", value) }
    if value >= 1 { return String(format: "%.2f", value) }
    return String(format: "%.3g", value)
  }
}

/// A value shared between a benchmark thread and the caller.
final class Shared<Value: Sendable>: Sendable {
  private let storage: Mutex<Value>
  init(_ value: Value) { storage = Mutex(value) }
  var value: Value { storage.withLock { $0 } }
  func set(_ value: Value) { storage.withLock { $0 = value } }
  func update(_ body: (inout Value) -> Void) { storage.withLock { body(&$0) } }
}

/// Runs `body` on a new thread (sockets live on one thread) and returns a
/// semaphore signalled when it ends.
func onThread(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
  let done = DispatchSemaphore(value: 0)
  Thread.detachNewThread {
    body()
    done.signal()
  }
  return done
}

/// Elapsed seconds between two `MonotonicClock.nanoseconds()` readings.
func seconds(from start: UInt64, to end: UInt64 = MonotonicClock.nanoseconds()) -> Double {
  Double(end - start) / 1e9
}

/// Keeps the optimizer from discarding a computed value.
@inline(never)
func blackHole(_ value: Double) {
  if value == 0x1.23456789p-1000 { print(value) }
}
