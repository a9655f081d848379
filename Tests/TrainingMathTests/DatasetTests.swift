import Testing

@testable import TrainingMath

@Suite struct DatasetTests {
  @Test func seedDataIsTheTutorials() {
    #expect(Dataset.seed.samples.map(\.x) == [1, -1])
    #expect(Dataset.seed.samples.map(\.label) == [-1, 1])
  }

  @Test func parsesHeaderCommentsAndBlankLines() throws {
    let dataset = try Dataset(csv: "x,label\r\n# comment\n\n0.5, -0.5\n-2,2\n")
    #expect(
      dataset.samples == [Sample(index: 0, x: 0.5, label: -0.5), Sample(index: 1, x: -2, label: 2)])
  }

  @Test func reportsTheLineOfABadRow() {
    #expect(
      throws: TrainingMathError.wrongFieldCount(line: 2, expected: 2, found: 1, hasHeader: false)
    ) { try Dataset(csv: "1,2\n3\n") }
    #expect(throws: TrainingMathError.invalidNumber(line: 3, column: "x", text: "nan")) {
      try Dataset(csv: "x,label\n1,2\nnan,1\n")
    }
    #expect(throws: TrainingMathError.invalidNumber(line: 1, column: "label", text: "inf")) {
      try Dataset(csv: "1,inf")
    }
    #expect(throws: TrainingMathError.emptyDataset) { try Dataset(csv: "x,label\n# nothing\n") }
    #expect(
      throws: TrainingMathError.wrongFieldCount(line: 2, expected: 2, found: 3, hasHeader: true)
    ) {
      try Dataset(csv: "x,label\n1,2,3")
    }
  }

  @Test func generationIsDeterministicAndRoundTripsThroughCSV() throws {
    let a = try Dataset.generate(rows: 500, seed: 11, noise: 0.1)
    let b = try Dataset.generate(rows: 500, seed: 11, noise: 0.1)
    let c = try Dataset.generate(rows: 500, seed: 12, noise: 0.1)
    #expect(a == b)
    #expect(a != c)
    #expect(try Dataset(csv: a.csv()) == a)
    #expect(a.samples.allSatisfy { $0.x >= -1 && $0.x < 1 })
    let clean = try Dataset.generate(rows: 100, seed: 3)
    #expect(clean.samples.allSatisfy { $0.label == -$0.x })
    #expect(throws: TrainingMathError.self) { try Dataset.generate(rows: 0, seed: 1) }
    #expect(throws: TrainingMathError.self) { try Dataset.generate(rows: 5, seed: 1, noise: -1) }
  }

  @Test func shardsAreDisjointCoverEveryRowAndDifferByAtMostOne() throws {
    for rows in [0, 1, 2, 3, 7, 100, 101] {
      for count in 1...9 {
        var seen: [Int] = []
        var sizes: [Int] = []
        for index in 0..<count {
          let range = try Shard(index: index, count: count).rows(of: rows)
          seen += Array(range)
          sizes.append(range.count)
        }
        #expect(seen == Array(0..<rows), "rows \(rows) count \(count)")
        #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1)
      }
    }
  }

  @Test func shardRowsKeepTheirRowNumbers() throws {
    let dataset = try Dataset.generate(rows: 10, seed: 1)
    let rows = dataset.samples[dataset.rows(of: try Shard(parsing: "1/3"))]
    #expect(rows.map(\.index) == [3, 4, 5])
  }

  @Test func shardParsingRejectsNonsense() {
    for text in ["", "1", "2/2", "-1/2", "0/0", "a/b", "0/2/3", "0/99999999"] {
      #expect(throws: TrainingMathError.self, "\(text)") { try Shard(parsing: text) }
    }
  }
}

@Suite struct TensorSliceTests {
  @Test func slicesKeepNamesAndCountOverlaps() {
    let layout = [TensorSpec(name: "a", count: 3), TensorSpec(name: "b", count: 4)]
    #expect(layout.slice(0..<7) == layout)
    #expect(
      layout.slice(2..<5) == [TensorSpec(name: "a", count: 1), TensorSpec(name: "b", count: 2)])
    #expect(layout.slice(3..<7) == [TensorSpec(name: "b", count: 4)])
    #expect(layout.slice(5..<5).isEmpty)
  }
}
