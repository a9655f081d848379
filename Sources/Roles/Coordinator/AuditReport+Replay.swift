import TrainingMath
import WireProtocol

/// How an audit report tells its replay and its checks, in its text line and its JSON.
extension AuditReport {
  /// "replay exact: 9,610 coordinates identical", or how many differ.
  static func replaySummary(_ replay: ReplayComparison) -> String {
    let count = grouped(replay.coordinateCount)
    if replay.differingCount == 0 {
      return "replay \(replay.mode.rawValue): \(count) coordinates identical"
    }
    if replay.passed {
      return
        "replay \(replay.mode.rawValue): \(grouped(replay.differingCount)) of \(count) coordinates differ within rounding (largest \(replay.largestDifference))"
    }
    return "replay \(replay.mode.rawValue): FAIL"
  }

  /// "3 of 9,610 coordinates differ, first layer1.weight[12] 0.1 vs replayed 0.2,
  /// largest |difference| 0.1 at layer1.weight[12]".
  static func replayFailure(_ replay: ReplayComparison) -> String {
    var text =
      "\(grouped(replay.mismatchCount)) of \(grouped(replay.coordinateCount)) coordinates differ"
      + (replay.mode == .rounding ? " beyond rounding" : "")
    if let first = replay.first {
      text += ", first \(first.label) \(first.pushed) vs replayed \(first.replayed)"
      if replay.mode == .rounding { text += " (allowed \(first.allowed))" }
    }
    if let worst = replay.worst {
      text += ", largest |difference| \(worst.difference) at \(worst.label)"
    }
    return text
  }

  /// `value` with commas between thousands: 9,610.
  static func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (offset, digit) in digits.enumerated() {
      if offset > 0 && (digits.count - offset) % 3 == 0 { result.append(",") }
      result.append(digit)
    }
    return (value < 0 ? "-" : "") + result
  }

  /// The checks as JSON names: `["finite_differences","replay"]`.
  static func jsonNames(_ checks: AuditChecks) -> String {
    var names: [String] = []
    if checks.contains(.finiteDifferences) { names.append("\"finite_differences\"") }
    if checks.contains(.replay) { names.append("\"replay\"") }
    return "[" + names.joined(separator: ",") + "]"
  }

  /// The replay as a JSON object.
  static func json(_ replay: ReplayComparison) -> String {
    func coordinate(_ difference: ReplayDifference?) -> String {
      guard let difference else { return "null" }
      return "{\"label\":\(JSON.string(difference.label)),\"index\":\(difference.index),"
        + "\"pushed\":\(JSON.number(difference.pushed)),\"replayed\":\(JSON.number(difference.replayed)),"
        + "\"allowed\":\(JSON.number(difference.allowed))}"
    }
    return "{\"mode\":\"\(replay.mode.rawValue)\",\"passed\":\(replay.passed),"
      + "\"coordinates\":\(replay.coordinateCount),\"differing\":\(replay.differingCount),"
      + "\"mismatches\":\(replay.mismatchCount),"
      + "\"largest_difference\":\(JSON.number(replay.largestDifference)),"
      + "\"first\":\(coordinate(replay.first)),\"worst\":\(coordinate(replay.worst))}"
  }
}
