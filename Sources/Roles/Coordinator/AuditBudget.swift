import Foundation
import WireProtocol

/// How much the coordinator audits so that audits cost about a fraction `fraction` of
/// the training's compute: the probability each applied push is sampled with, and which
/// checks each sampled push gets. Pure: the coordinator hands it measured costs and asks.
///
/// A worker's push costs one gradient, `r` seconds of compute (timed by the coordinator
/// on a workspace kept for it, as a worker keeps one). An audit that only replays the push
/// costs `a` (the gradient again, in a fresh workspace, the comparison, the report: more
/// than `r` for small batches); the finite differences cost `f` more (many forward
/// passes). With the replay, every sampled push is replayed and a share `q = min(1, a / f)`
/// also gets finite differences (so they take at most half the audit time), and the push
/// probability is `p = fraction · r / (a + q · f)`. Without the replay, every audit is
/// finite differences: `p = fraction · r / f`. Costs are the medians of the last
/// measurements; before any, a replay is assumed to cost a gradient and finite
/// differences a hundred (the first audits measure them).
public struct AuditBudget: Equatable, Sendable {
  /// The default fraction of training compute spent on audits.
  public static let defaultFraction = 0.02
  /// Finite differences are assumed to cost this many gradients before they are measured.
  public static let assumedFiniteDifferenceGradients = 100.0
  /// One gradient is timed on this many of the first audits, then on every
  /// `gradientTimingPeriod`-th.
  public static let initialGradientTimings = 5
  /// See `initialGradientTimings`.
  public static let gradientTimingPeriod = 20

  /// The fraction of training compute to spend on audits (0 to 1; 0: no sampling).
  public let fraction: Double
  /// Whether audits can replay a push (recompute its gradient): with it, only a share of
  /// them run finite differences.
  public let hasReplay: Bool
  private var gradientCosts = RecentMedian()
  private var replayCosts = RecentMedian()
  private var finiteDifferenceCosts = RecentMedian()
  /// Finite differences owed, in audits: grows by `q` per audit, spent one at a time.
  private var finiteDifferenceCredit = 1.0
  /// Audits since a gradient was last timed.
  private var auditsSinceGradientTiming = 0

  /// A budget of `fraction` of training compute; `hasReplay` when audits can replay.
  public init(fraction: Double = Self.defaultFraction, hasReplay: Bool = false) {
    self.fraction = min(max(fraction, 0), 1)
    self.hasReplay = hasReplay
  }

  /// Seconds of compute of one gradient on a record's rows (r), once measured.
  public var gradientSeconds: Double? { gradientCosts.median }
  /// Seconds of compute of one audit that only replays (a), once measured.
  public var replaySeconds: Double? { replayCosts.median }
  /// Seconds of compute of one audit's finite differences (f), once measured.
  public var finiteDifferenceSeconds: Double? { finiteDifferenceCosts.median }

  /// The share of audits that run finite differences: `min(1, r / f)` with a replay, 1 without.
  public var finiteDifferenceShare: Double {
    guard hasReplay else { return 1 }
    guard let a = replaySeconds ?? gradientSeconds, let f = finiteDifferenceSeconds else {
      return 1 / Self.assumedFiniteDifferenceGradients
    }
    return Self.finiteDifferenceShare(gradientSeconds: a, finiteDifferenceSeconds: f)
  }

  /// The probability to sample each push with, from the costs measured so far.
  public var probability: Double {
    let r = gradientSeconds ?? 1
    let f = finiteDifferenceSeconds ?? r * Self.assumedFiniteDifferenceGradients
    return Self.probability(
      fraction: fraction, gradientSeconds: r, finiteDifferenceSeconds: f, hasReplay: hasReplay,
      replaySeconds: replaySeconds)
  }

  /// `min(1, r / f)`: finite differences on that share of audits take at most as long as
  /// the replays.
  public static func finiteDifferenceShare(
    gradientSeconds r: Double, finiteDifferenceSeconds f: Double
  )
    -> Double
  {
    f > 0 ? min(1, r / f) : 1
  }

  /// The sampling probability for `fraction` of compute: `fraction · r / (a + q · f)` with
  /// a replay (an audit that only replays costs `a`, by default `r`), `fraction · r / f`
  /// without; at most 1, and 0 for a fraction of 0.
  public static func probability(
    fraction: Double, gradientSeconds r: Double, finiteDifferenceSeconds f: Double,
    hasReplay: Bool, replaySeconds: Double? = nil
  ) -> Double {
    guard fraction > 0, r > 0 else { return 0 }
    let a = replaySeconds ?? r
    let costPerAudit =
      hasReplay
      ? a + finiteDifferenceShare(gradientSeconds: a, finiteDifferenceSeconds: f) * f
      : max(f, .leastNormalMagnitude)
    return min(1, fraction * r / costPerAudit)
  }

  /// Whether the audit about to run should include finite differences: always without a
  /// replay; with one, a share `finiteDifferenceShare` of audits, spread evenly (the first
  /// audit always does).
  public mutating func shouldRunFiniteDifferences() -> Bool {
    guard hasReplay else { return true }
    if finiteDifferenceCredit >= 1 {
      finiteDifferenceCredit -= 1
      finiteDifferenceCredit += finiteDifferenceShare
      return true
    }
    finiteDifferenceCredit += finiteDifferenceShare
    return false
  }

  /// Whether the coordinator should time one gradient on the next record's rows (what the
  /// push cost its worker): on the first audits and then on every
  /// `gradientTimingPeriod`-th.
  public var wantsGradientTiming: Bool {
    gradientCosts.count < Self.initialGradientTimings
      || auditsSinceGradientTiming >= Self.gradientTimingPeriod
  }

  /// Records the compute seconds of one audit that only replayed its push (a).
  public mutating func recordReplay(seconds: Double) {
    guard seconds.isFinite, seconds >= 0 else { return }
    replayCosts.add(seconds)
  }

  /// Records the compute seconds of one gradient on a record's rows, timed for
  /// `wantsGradientTiming` as a worker computes it (r).
  public mutating func recordGradient(seconds: Double) {
    guard seconds.isFinite, seconds >= 0 else { return }
    gradientCosts.add(seconds)
    auditsSinceGradientTiming = 0
  }

  /// Records the compute seconds of one audit's finite differences.
  public mutating func recordFiniteDifferences(seconds: Double) {
    guard seconds.isFinite, seconds >= 0 else { return }
    finiteDifferenceCosts.add(seconds)
  }

  /// Counts one audit made (for `wantsGradientTiming`).
  public mutating func audited() {
    auditsSinceGradientTiming += 1
  }

  /// The checks the next audit runs of `checks`: with a replay among them and a
  /// budget, the finite differences only on their share (`shouldRunFiniteDifferences`).
  public mutating func checks(of checks: AuditChecks) -> AuditChecks {
    var run = checks
    if run.isSuperset(of: .all), fraction > 0, !shouldRunFiniteDifferences() {
      run.remove(.finiteDifferences)
    }
    return run
  }

  /// Records one audit that ran `checks` in `seconds` of compute: an audit that
  /// only replays costs a; one with both, a plus the finite differences.
  public mutating func account(checks: AuditChecks, seconds: Double) {
    switch (checks.contains(.replay), checks.contains(.finiteDifferences)) {
    case (true, false): recordReplay(seconds: seconds)
    case (true, true): recordFiniteDifferences(seconds: max(0, seconds - (replaySeconds ?? 0)))
    case (false, _): recordFiniteDifferences(seconds: seconds)
    }
    audited()
  }

  /// The pushes within which a worker faulty on every push is audited (and so flagged)
  /// with probability `confidence`, when each push is sampled with `probability`:
  /// `ceil(ln(1 − confidence) / ln(1 − probability))`; nil when nothing is sampled.
  public static func detectionPushes(probability: Double, confidence: Double = 0.999) -> Int? {
    guard probability > 0 else { return nil }
    guard probability < 1 else { return 1 }
    return Int((log(1 - confidence) / log1p(-probability)).rounded(.up))
  }

  /// Whether a probability moved from `old` to `new` is worth a line: by more than 20%.
  public static func changedMeaningfully(from old: Double, to new: Double) -> Bool {
    guard old > 0 else { return new > 0 }
    return abs(new - old) > 0.2 * old
  }
}

/// The median of the last measurements of a cost (at most 15), so that one run of a
/// busy machine does not swing it.
struct RecentMedian: Equatable, Sendable {
  static let window = 15
  private var values: [Double] = []
  private var next = 0
  /// Measurements taken in all.
  private(set) var count = 0

  /// Adds a measurement, replacing the oldest once the window is full.
  mutating func add(_ value: Double) {
    if values.count < Self.window {
      values.append(value)
    } else {
      values[next] = value
      next = (next + 1) % Self.window
    }
    count += 1
  }

  /// The median of the window (nil before any measurement).
  var median: Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  }
}
