import Foundation
import Testing
import TrainingMath
import WireProtocol

@testable import Roles

/// The audit budget's policy, the detection arithmetic and each worker's coverage, with
/// made-up costs and statuses: no clock, no server.
@Suite struct AuditBudgetTests {
  /// With a replay, every sampled push is replayed and finite differences run on a share
  /// `min(1, r/f)`: the probability is `F·r/(r + q·f)`, between F/2 and F.
  @Test func theProbabilitySpendsTheBudget() {
    // Finite differences cost 10 gradients: a tenth of the audits run them.
    #expect(
      AuditBudget.finiteDifferenceShare(gradientSeconds: 1, finiteDifferenceSeconds: 10) == 0.1)
    #expect(
      AuditBudget.probability(
        fraction: 0.02, gradientSeconds: 1, finiteDifferenceSeconds: 10, hasReplay: true) == 0.01)
    // Cheap finite differences run on every audit: p = F·r/(r + f).
    #expect(
      abs(
        AuditBudget.probability(
          fraction: 0.02, gradientSeconds: 1, finiteDifferenceSeconds: 0.25, hasReplay: true)
          - 0.016) < 1e-12)
    // Without a replay every audit is finite differences: p = F·r/f.
    #expect(
      abs(
        AuditBudget.probability(
          fraction: 0.02, gradientSeconds: 1, finiteDifferenceSeconds: 10, hasReplay: false)
          - 0.002) < 1e-12)
    #expect(
      AuditBudget.probability(
        fraction: 0, gradientSeconds: 1, finiteDifferenceSeconds: 10, hasReplay: true) == 0)
    #expect(
      AuditBudget.probability(
        fraction: 1, gradientSeconds: 1, finiteDifferenceSeconds: 0.001, hasReplay: false) == 1)
    // The compute spent per push is the fraction of a gradient, whatever the costs.
    for f in [0.1, 1, 3, 50] {
      let p = AuditBudget.probability(
        fraction: 0.05, gradientSeconds: 2, finiteDifferenceSeconds: f, hasReplay: true)
      let q = AuditBudget.finiteDifferenceShare(gradientSeconds: 2, finiteDifferenceSeconds: f)
      #expect(abs(p * (2 + q * f) - 0.05 * 2) < 1e-12)
      #expect(p >= 0.025 && p <= 0.05)
    }
  }

  /// Before any cost is measured the probability is cautious (finite differences assumed
  /// to cost a hundred gradients); measured costs move it, as medians of the latest.
  @Test func measuredCostsSetTheProbability() {
    var budget = AuditBudget(fraction: 0.02, hasReplay: true)
    #expect(budget.probability == 0.01)
    var plain = AuditBudget(fraction: 0.02)
    #expect(abs(plain.probability - 0.0002) < 1e-12)
    #expect(plain.wantsGradientTiming)
    for _ in 0..<AuditBudget.initialGradientTimings {
      plain.recordGradient(seconds: 0.001)
      plain.recordFiniteDifferences(seconds: 0.004)
      plain.audited()
    }
    #expect(abs(plain.probability - 0.005) < 1e-12)
    // One outlier does not move the median.
    plain.recordFiniteDifferences(seconds: 5)
    #expect(abs(plain.probability - 0.005) < 1e-12)
    #expect(!plain.wantsGradientTiming)
    for _ in 0..<AuditBudget.gradientTimingPeriod { plain.audited() }
    #expect(plain.wantsGradientTiming)
    budget.recordGradient(seconds: 0.001)
    budget.recordFiniteDifferences(seconds: 0.001)
    #expect(abs(budget.probability - 0.01) < 1e-12)
    // With a replay too, gradients are timed on the first audits (what a push costs).
    #expect(budget.wantsGradientTiming)
    // An audit that only replays costs more than the worker's gradient (a fresh
    // workspace, the comparison, the report): the probability pays for it.
    budget.recordReplay(seconds: 0.009)
    budget.recordFiniteDifferences(seconds: 0.009)
    #expect(budget.finiteDifferenceShare == 1)
    // f is the median of 0.001 and 0.009.
    #expect(abs(budget.probability - 0.02 * 0.001 / (0.009 + 0.005)) < 1e-12)
    #expect(AuditBudget(fraction: 3).fraction == 1)
  }

  /// Finite differences run on a share q of the audits, spread evenly, the first included;
  /// always without a replay.
  @Test func finiteDifferencesRunOnTheirShare() {
    var budget = AuditBudget(fraction: 0.02, hasReplay: true)
    budget.recordGradient(seconds: 1)
    budget.recordFiniteDifferences(seconds: 4)
    let runs = (0..<100).map { _ in budget.shouldRunFiniteDifferences() }
    #expect(runs.filter { $0 }.count == 25)
    #expect(runs[0] && !runs[1] && !runs[2] && !runs[3] && runs[4])
    var plain = AuditBudget(fraction: 0.02)
    #expect((0..<10).allSatisfy { _ in plain.shouldRunFiniteDifferences() })
  }

  /// N = ceil(ln(0.001) / ln(1 − p)): the pushes within which a worker faulty on every
  /// push is flagged with probability 0.999.
  @Test func detectionArithmetic() {
    #expect(AuditBudget.detectionPushes(probability: 0.01) == 688)
    #expect(AuditBudget.detectionPushes(probability: 0.5) == 10)
    #expect(AuditBudget.detectionPushes(probability: 1) == 1)
    #expect(AuditBudget.detectionPushes(probability: 0) == nil)
    let n = AuditBudget.detectionPushes(probability: 0.003)!
    let missed = { (pushes: Int) in pow(1 - 0.003, Double(pushes)) }
    #expect(missed(n) <= 0.001 && missed(n - 1) > 0.001)
    #expect(AuditBudget.changedMeaningfully(from: 0.01, to: 0.013))
    #expect(!AuditBudget.changedMeaningfully(from: 0.01, to: 0.011))
    #expect(AuditBudget.changedMeaningfully(from: 0, to: 0.01))
  }

  /// A worker is covered by its audits; one with more than the limit of pushes since its
  /// last audit (or since it was first seen) is warned about, once, until audited again.
  @Test func coverageWarnsAboutAWorkerGoneUnaudited() {
    var coverage = AuditCoverage()
    coverage.observe(status(workers: [(0, 100), (1, 100)]))
    coverage.audited(workerID: 0, sequence: 101)
    coverage.audited(workerID: 1, sequence: 101)
    coverage.observe(status(workers: [(0, 300), (1, 300)]))
    #expect(coverage.newWarnings(limit: 500).isEmpty)
    coverage.audited(workerID: 0, sequence: 400)
    coverage.observe(status(workers: [(0, 700), (1, 700), (2, 40)]))
    let warnings = coverage.newWarnings(limit: 500)
    #expect(warnings.map(\.workerID) == [1])
    #expect(warnings.first?.text.contains("599 pushes since its push 101") == true)
    #expect(coverage.newWarnings(limit: 500).isEmpty)  // once
    coverage.observe(status(workers: [(0, 800), (1, 800), (2, 600)]))
    #expect(coverage.newWarnings(limit: 500).map(\.workerID) == [2])  // never audited
    coverage.audited(workerID: 1, sequence: 801)
    coverage.observe(status(workers: [(1, 1400)]))
    #expect(coverage.newWarnings(limit: 500).map(\.workerID) == [1])  // again after an audit
    let worker0 = coverage.workers[0]!
    #expect(worker0.audits == 2 && worker0.pushesWatched == 700)
    #expect(abs(worker0.auditedRate - 2.0 / 700) < 1e-12)
    #expect(coverage.json.hasPrefix("[{\"worker\":0,\"pushes\":800,\"pushes_watched\":700,"))
  }

  /// The warning limit is three times the detection pushes, or three periods.
  @Test func warningLimit() {
    #expect(AuditCoverage.warningLimit(probability: 0.01, every: nil) == 3 * 688)
    #expect(AuditCoverage.warningLimit(probability: 0.01, every: 100) == 300)
    #expect(AuditCoverage.warningLimit(probability: 0, every: 10) == 30)
    #expect(
      AuditCoverage.warningLimit(probability: 0, every: AuditSubscription.noPeriods) == nil)
  }

  func status(workers: [(UInt32, UInt64)]) -> ServerStatus {
    var status = makeServer(.async).status
    status.workers = workers.map {
      WorkerStatus(
        workerID: $0.0, shard: try! Shard(index: 0, count: 1), pushesApplied: $0.1,
        lastSequence: $0.1, lastStaleness: 0)
    }
    return status
  }
}
