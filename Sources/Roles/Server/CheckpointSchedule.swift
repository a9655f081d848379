import WireProtocol

/// When a server writes its next checkpoint, and what it says when they fail: a
/// pure policy, clocked by its caller (`now` in milliseconds on any monotonic
/// clock), so it is tested without files or waiting.
///
/// While checkpoints work, one is due every `every` versions. After a failure
/// the next try is at the following boundary, and each further failure doubles
/// the gap, up to `maximumGapFactor` × `every` versions; once a boundary has
/// passed, a try is never more than `longestWaitMilliseconds` away, so slow
/// training still notices when space comes back. The first failure is reported
/// at once, later ones at most once per `summaryIntervalMilliseconds`, with the
/// count; the first success after failures is reported once.
public struct CheckpointSchedule: Sendable {
  /// Versions between checkpoints while they work.
  public let every: UInt64
  /// The widest gap between tries, in multiples of `every`.
  public let maximumGapFactor: UInt64
  /// Once a boundary has passed, the longest wait for a try while failing.
  public let longestWaitMilliseconds: UInt64
  /// The shortest time between two lines about continuing failures.
  public let summaryIntervalMilliseconds: UInt64

  /// The newest durable checkpoint: its version and when it was written.
  public private(set) var durable: (version: UInt64, at: UInt64)?
  /// Failed attempts since the start.
  public private(set) var failures: UInt64 = 0
  /// The latest error and when it happened.
  public private(set) var lastError: (text: String, at: UInt64)?
  private var lastAttempt: (version: UInt64, at: UInt64)
  /// The failures since the last success: when they began, how many, and when
  /// the last line about them was said.
  private var streak: (since: UInt64, tries: UInt64, saidAt: UInt64)?

  /// A schedule for a server at `version` now, whose newest durable checkpoint
  /// is `durable` (the one it resumed from, if any).
  public init(
    every: UInt64, version: UInt64, now: UInt64, durable: (version: UInt64, at: UInt64)? = nil,
    maximumGapFactor: UInt64 = 64, longestWaitMilliseconds: UInt64 = 60_000,
    summaryIntervalMilliseconds: UInt64 = 60_000
  ) {
    self.every = max(1, every)
    self.maximumGapFactor = max(1, maximumGapFactor)
    self.longestWaitMilliseconds = longestWaitMilliseconds
    self.summaryIntervalMilliseconds = summaryIntervalMilliseconds
    self.durable = durable
    lastAttempt = (version, now)
  }

  /// Whether checkpoints are failing (the latest attempt failed).
  public var isFailing: Bool { streak != nil }

  /// Versions from the latest attempt to the next: `every`, doubled for each
  /// failure after the first, at most `maximumGapFactor` × `every`.
  public var gap: UInt64 {
    guard let streak else { return every }
    let factor = min(UInt64(1) << min(streak.tries - 1, 62), maximumGapFactor)
    let (product, overflow) = every.multipliedReportingOverflow(by: factor)
    return overflow ? .max : product
  }

  /// The version at which the next attempt is due (sooner when failing and
  /// `longestWaitMilliseconds` have passed since the last try).
  public var nextVersion: UInt64 {
    let (sum, overflow) = lastAttempt.version.addingReportingOverflow(gap)
    return overflow ? .max : sum
  }

  /// Whether a checkpoint of `version` is due at `now`.
  public func isDue(version: UInt64, now: UInt64) -> Bool {
    guard version > lastAttempt.version else { return false }
    if version >= nextVersion { return true }
    return streak != nil && version - lastAttempt.version >= every
      && elapsed(since: lastAttempt.at, now) >= longestWaitMilliseconds
  }

  /// Notes that the checkpoint of `version` was written; returns the line to
  /// say when it ends a run of failures (nil otherwise).
  public mutating func succeeded(version: UInt64, now: UInt64) -> String? {
    lastAttempt = (version, now)
    let before = durable
    durable = (version, now)
    guard let ended = streak else { return nil }
    streak = nil
    return
      "checkpoints work again: version \(version) is durable, after \(Self.describe(milliseconds: elapsed(since: ended.since, now))) of failures (\(ended.tries) tries); "
      + (before.map { "the newest durable one was version \($0.version)" }
        ?? "none was durable before")
  }

  /// Notes that the checkpoint of `version` failed with `error`; returns the
  /// line to say: the first failure of a run, then at most one per
  /// `summaryIntervalMilliseconds` with the count (nil in between).
  public mutating func failed(version: UInt64, error: String, now: UInt64) -> String? {
    lastAttempt = (version, now)
    failures += 1
    lastError = (error, now)
    guard var current = streak else {
      streak = (since: now, tries: 1, saidAt: now)
      return
        "checkpoint at version \(version) failed, the previous one is kept: \(error); \(durableText); "
        + "next try at version \(nextVersion), then less often while checkpoints fail"
    }
    current.tries += 1
    defer { streak = current }
    guard elapsed(since: current.saidAt, now) >= summaryIntervalMilliseconds else { return nil }
    current.saidAt = now
    return
      "checkpoints failing for \(Self.describe(milliseconds: elapsed(since: current.since, now))) (\(current.tries) tries): \(error); \(durableText)"
  }

  /// "newest durable checkpoint is version N", or that there is none.
  public var durableText: String {
    durable.map { "newest durable checkpoint is version \($0.version)" }
      ?? "no checkpoint of this run is durable yet"
  }

  /// The report for `status` at `now`.
  public func health(now: UInt64) -> CheckpointHealth {
    CheckpointHealth(
      durableVersion: durable?.version,
      durableAgeMilliseconds: durable.map { elapsed(since: $0.at, now) } ?? 0,
      failures: failures, consecutiveFailures: streak?.tries ?? 0,
      failingForMilliseconds: streak.map { elapsed(since: $0.since, now) } ?? 0,
      lastError: lastError?.text ?? "",
      lastErrorAgeMilliseconds: lastError.map { elapsed(since: $0.at, now) } ?? 0)
  }

  /// Milliseconds from `then` to `now`, 0 if `now` is earlier.
  private func elapsed(since then: UInt64, _ now: UInt64) -> UInt64 { now >= then ? now - then : 0 }

  /// A duration for people: "45 s", "2 min", "3 h 5 min".
  public static func describe(milliseconds: UInt64) -> String {
    let seconds = milliseconds / 1000
    if seconds < 60 { return "\(seconds) s" }
    if seconds < 3600 { return "\(seconds / 60) min" }
    let minutes = seconds / 60 % 60
    return "\(seconds / 3600) h" + (minutes > 0 ? " \(minutes) min" : "")
  }
}
