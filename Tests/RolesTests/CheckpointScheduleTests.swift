import Testing
import WireProtocol

@testable import Roles

/// The checkpoint policy with a made-up clock: when it tries, what it says.
@Suite struct CheckpointScheduleTests {
  /// Drives `schedule` one version at a time from its version to `last`, one
  /// millisecond apart from `start` (updates as fast as can be); every due
  /// attempt fails with `error`. Returns the versions tried and the lines said.
  func failEveryAttempt(
    _ schedule: inout CheckpointSchedule, from first: UInt64, to last: UInt64,
    startingAt start: UInt64, millisecondsPerVersion: UInt64 = 1, error: String = "full"
  ) -> (tried: [UInt64], lines: [String]) {
    var tried: [UInt64] = []
    var lines: [String] = []
    for version in first...last {
      let now = start + (version - first) * millisecondsPerVersion
      guard schedule.isDue(version: version, now: now) else { continue }
      tried.append(version)
      if let line = schedule.failed(version: version, error: error, now: now) { lines.append(line) }
    }
    return (tried, lines)
  }

  @Test func healthyCheckpointsAreDueEveryBoundary() {
    var schedule = CheckpointSchedule(every: 100, version: 0, now: 0)
    #expect(!schedule.isDue(version: 99, now: 10))
    #expect(schedule.isDue(version: 100, now: 10))
    #expect(schedule.succeeded(version: 100, now: 10) == nil)
    #expect(!schedule.isDue(version: 199, now: 1_000_000))
    #expect(schedule.isDue(version: 200, now: 20))
    #expect(
      schedule.health(now: 30) == CheckpointHealth(durableVersion: 100, durableAgeMilliseconds: 20))
  }

  /// The defect of issue 17: after one failure the server tried again on
  /// every update. Now the next try is at the following boundary, then the gap
  /// doubles up to 64 boundaries.
  @Test func afterAFailureTheGapDoublesUpToACap() {
    var schedule = CheckpointSchedule(every: 100, version: 0, now: 0)
    _ = schedule.succeeded(version: 100, now: 0)
    let run = failEveryAttempt(&schedule, from: 101, to: 30_000, startingAt: 1)
    let gaps = zip(run.tried.dropFirst(), run.tried).map { $0 - $1 }
    #expect(run.tried.first == 200)
    #expect(Array(gaps.prefix(8)) == [100, 200, 400, 800, 1600, 3200, 6400, 6400])
    #expect(gaps.allSatisfy { $0 <= 6400 })
    // 29,900 updates while failing, 10 tries (before the fix: one per update).
    #expect(run.tried.count == 10)
    #expect(schedule.failures == 10)
  }

  @Test func theFirstFailureIsSaidThenOneLineAMinuteWithTheCount() {
    var schedule = CheckpointSchedule(every: 10, version: 190, now: 0, durable: (190, 0))
    _ = schedule.succeeded(version: 200, now: 0)
    // Slow training: 100 ms per update, for 10 minutes.
    let run = failEveryAttempt(
      &schedule, from: 201, to: 6200, startingAt: 100, millisecondsPerVersion: 100,
      error: "cannot write x: No space left on device")
    #expect(run.tried.first == 210)
    #expect(
      run.lines.first
        == "checkpoint at version 210 failed, the previous one is kept: cannot write x: No space left on device; newest durable checkpoint is version 200; next try at version 220, then less often while checkpoints fail"
    )
    // One line at the start, then at most one a minute: 10 minutes, 10 more lines at most.
    #expect(run.lines.count >= 2 && run.lines.count <= 11)
    #expect(run.tried.count > run.lines.count)
    #expect(
      run.lines.dropFirst().allSatisfy {
        $0.hasPrefix("checkpoints failing for ")
          && $0.hasSuffix(
            " tries): cannot write x: No space left on device; newest durable checkpoint is version 200"
          )
      })
    let health = schedule.health(now: 600_000)
    #expect(health.durableVersion == 200)
    #expect(health.durableAgeMilliseconds == 600_000)
    #expect(health.consecutiveFailures == UInt64(run.tried.count))
    #expect(health.failingForMilliseconds == 600_000 - 1000)  // since version 210
    #expect(health.lastError == "cannot write x: No space left on device")
  }

  @Test func theSummaryLineCountsTriesAndTime() {
    var schedule = CheckpointSchedule(every: 10, version: 0, now: 0)
    #expect(schedule.failed(version: 10, error: "disk full", now: 1000) != nil)
    #expect(schedule.failed(version: 20, error: "disk full", now: 30_000) == nil)
    #expect(schedule.failed(version: 40, error: "disk full", now: 60_999) == nil)
    #expect(
      schedule.failed(version: 80, error: "disk full", now: 121_000)
        == "checkpoints failing for 2 min (4 tries): disk full; no checkpoint of this run is durable yet"
    )
    #expect(schedule.failed(version: 160, error: "disk full", now: 150_000) == nil)
  }

  /// Slow training still retries: once a boundary has passed, a try is at
  /// most a minute after the last one, however wide the gap has grown.
  @Test func aFailingScheduleRetriesAtLeastOnceAMinuteOnceABoundaryPassed() {
    var schedule = CheckpointSchedule(every: 10, version: 0, now: 0)
    for (version, now) in [(10, 0), (20, 1), (40, 2), (80, 3), (160, 4)] as [(UInt64, UInt64)] {
      #expect(schedule.isDue(version: version, now: now))
      _ = schedule.failed(version: version, error: "full", now: now)
    }
    #expect(schedule.nextVersion == 160 + 160)
    #expect(!schedule.isDue(version: 169, now: 100_000))  // no boundary passed yet
    #expect(!schedule.isDue(version: 170, now: 60_003))  // not a minute yet
    #expect(schedule.isDue(version: 170, now: 60_004))
  }

  @Test func theFirstSuccessAfterFailuresIsSaidOnce() {
    var schedule = CheckpointSchedule(every: 100, version: 0, now: 0)
    _ = schedule.succeeded(version: 100, now: 0)
    _ = schedule.failed(version: 200, error: "full", now: 1000)
    _ = schedule.failed(version: 300, error: "full", now: 2000)
    #expect(schedule.isFailing)
    #expect(
      schedule.succeeded(version: 500, now: 126_000)
        == "checkpoints work again: version 500 is durable, after 2 min of failures (2 tries); the newest durable one was version 100"
    )
    #expect(!schedule.isFailing)
    #expect(schedule.succeeded(version: 600, now: 127_000) == nil)
    // Back to every boundary; the last error is still reported, with its age.
    #expect(schedule.nextVersion == 700)
    #expect(
      schedule.health(now: 130_000)
        == CheckpointHealth(
          durableVersion: 600, durableAgeMilliseconds: 3000, failures: 2, consecutiveFailures: 0,
          failingForMilliseconds: 0, lastError: "full", lastErrorAgeMilliseconds: 128_000))
    // A new failure starts a new run, said at once.
    #expect(
      schedule.failed(version: 700, error: "full", now: 131_000)?.hasPrefix(
        "checkpoint at version 700 failed") == true)
  }

  @Test func durationsReadLikeALogLine() {
    #expect(CheckpointSchedule.describe(milliseconds: 999) == "0 s")
    #expect(CheckpointSchedule.describe(milliseconds: 59_999) == "59 s")
    #expect(CheckpointSchedule.describe(milliseconds: 125_000) == "2 min")
    #expect(CheckpointSchedule.describe(milliseconds: 3_600_000) == "1 h")
    #expect(CheckpointSchedule.describe(milliseconds: 3_900_000) == "1 h 5 min")
  }

  @Test func aClockThatStepsBackIsNotAnUnderflow() {
    var schedule = CheckpointSchedule(every: 1, version: 0, now: 1000)
    _ = schedule.failed(version: 1, error: "full", now: 1000)
    #expect(schedule.failed(version: 2, error: "full", now: 10) == nil)
    #expect(schedule.health(now: 0).failingForMilliseconds == 0)
  }
}
