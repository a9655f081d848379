import Testing

@testable import TrainingMath

@Suite struct ClickLogGeneratorTests {
  @Test func theSameArgumentsGiveTheSameBits() throws {
    let a = try SparseDataset.clicks(rows: 500, features: 5000, seed: 3, teacherSeed: 9)
    let b = try SparseDataset.clicks(rows: 500, features: 5000, seed: 3, teacherSeed: 9)
    #expect(a.dataset == b.dataset)
    #expect(a.teacherAUC.bitPattern == b.teacherAUC.bitPattern)
    #expect(a.teacher == b.teacher)
    let other = try SparseDataset.clicks(rows: 500, features: 5000, seed: 4, teacherSeed: 9)
    #expect(other.dataset.featureIDs != a.dataset.featureIDs)
  }

  @Test func rowsHave30To50DistinctAscendingIDsOfValue1() throws {
    let log = try SparseDataset.clicks(rows: 2000, features: 1000, seed: 5, teacherSeed: 1)
    let data = log.dataset
    #expect(data.count == 2000)
    var widths = Set<Int>()
    for row in 0..<data.count {
      let ids = Array(data.featureIDs[data.range(ofRow: row)])
      widths.insert(ids.count)
      #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 })
      #expect(ids.allSatisfy { $0 < 1000 })
    }
    #expect(widths.min() == 30 && widths.max() == 50)
    #expect(data.values.allSatisfy { $0 == 1 })
    #expect(data.labels.allSatisfy { $0 == 0 || $0 == 1 })
    let mean = Double(data.nonzeroCount) / Double(data.count)
    #expect(mean > 39 && mean < 41)
    // Zipf: id 0 is in far more rows than id 500.
    let counts = data.featureIDs.reduce(into: [UInt64: Int]()) { $0[$1, default: 0] += 1 }
    #expect(counts[0, default: 0] > 10 * counts[500, default: 0])
  }

  @Test func trainAndTestWithOneTeacherSeedShareTheTeacher() throws {
    let train = try SparseDataset.clicks(rows: 3000, features: 20_000, seed: 1, teacherSeed: 7)
    let test = try SparseDataset.clicks(rows: 3000, features: 20_000, seed: 2, teacherSeed: 7)
    #expect(train.teacher == test.teacher)
    #expect(train.dataset.featureIDs != test.dataset.featureIDs)
    let otherTeacher = try SparseDataset.clicks(
      rows: 3000, features: 20_000, seed: 1, teacherSeed: 8)
    #expect(otherTeacher.teacher != train.teacher)
    #expect(otherTeacher.dataset.featureIDs == train.dataset.featureIDs)
    // The teacher ranks the test rows as well as the train rows; another teacher does not.
    #expect(abs(train.teacher.auc(on: test.dataset) - test.teacherAUC) < 1e-12)
    #expect(abs(train.teacherAUC - test.teacherAUC) < 0.03)
    #expect(otherTeacher.teacher.auc(on: test.dataset) < 0.6)
  }

  @Test func theTeacherIsRealisticAndClicksAreRoughlyAQuarter() throws {
    let log = try SparseDataset.clicks(rows: 20_000, features: 100_000, seed: 1, teacherSeed: 1)
    #expect(log.teacherAUC > 0.75 && log.teacherAUC < 0.92)
    #expect(log.clickRate > 0.2 && log.clickRate < 0.3)
    #expect(log.teacher.informativeFeatures == 1000)
    #expect(log.teacher.weight(ofFeature: 999) != 0 && log.teacher.weight(ofFeature: 1000) == 0)
    let rate = log.dataset.labels.reduce(0, +) / Double(log.dataset.count)
    #expect(rate == log.clickRate)
  }

  @Test func badSettingsAreRefused() {
    #expect(throws: TrainingMathError.self) {
      try SparseDataset.clicks(rows: 0, features: 1000, seed: 1, teacherSeed: 1)
    }
    #expect(throws: TrainingMathError.self) {
      try SparseDataset.clicks(rows: 10, features: 999, seed: 1, teacherSeed: 1)
    }
  }

  @Test func aucCountsTiesAsHalf() {
    #expect(BinaryMetrics.auc(scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1]) == 0.75)
    #expect(BinaryMetrics.auc(scores: [1, 1, 1, 1], labels: [0, 1, 0, 1]) == 0.5)
    #expect(BinaryMetrics.auc(scores: [3, 1], labels: [1, 1]) == nil)
  }

  @Test func theGeneratedFileReadsBackBitForBit() throws {
    let log = try SparseDataset.clicks(rows: 400, features: 3000, seed: 2, teacherSeed: 2)
    let back = try SparseDataset(libsvm: log.dataset.libsvm())
    #expect(back == log.dataset)
    #expect(back.fingerprint == log.dataset.fingerprint)
  }
}
