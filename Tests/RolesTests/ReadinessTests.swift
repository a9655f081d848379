import Roles
import Testing

/// The flag behind `/readyz`.
struct ReadinessTests {
  @Test func notReadyUntilMarked() {
    let readiness = Readiness(awaiting: "a reply from the server")
    #expect(readiness.check(now: 1000) == (false, "waiting for a reply from the server"))
    readiness.markReady(now: 1000)
    #expect(readiness.check(now: 1_000_000).ready)
    readiness.markNotReady()
    #expect(!readiness.check(now: 1000).ready)
  }

  @Test func staleMarkIsNotReady() {
    let readiness = Readiness(awaiting: "a reply from the server", staleAfterMilliseconds: 500)
    readiness.markReady(now: 10_000)
    #expect(readiness.check(now: 10_500).ready)
    #expect(
      readiness.check(now: 10_501)
        == (false, "501 ms since a reply from the server (limit 500 ms)"))
    readiness.markReady(now: 10_600)
    #expect(readiness.check(now: 10_700).ready)
  }
}
