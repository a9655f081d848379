import Testing

@testable import TrainingMath

@Suite struct SparseLibSVMTests {
  @Test func readsLabelsIDsValuesCommentsAndBlankLines() throws {
    let text = """
      # a header comment
      1 3:0.5 10:1 # a tail comment
      -1 7:-2.25\t2:1e-3
      \t
      +1.0
      0 18446744073709551615:1\r
      -1.0 5:+4 6:.5
      1.0 1:1 
      """
    let data = try SparseDataset(libsvm: text)
    #expect(data.labels == [1, 0, 1, 0, 0, 1])
    #expect(data.rowStarts == [0, 2, 4, 4, 5, 7, 8])
    #expect(data.featureIDs == [3, 10, 7, 2, UInt64.max, 5, 6, 1])
    #expect(data.values == [0.5, 1, -2.25, 0.001, 1, 4, 0.5, 1])
    #expect(try SparseDataset(libsvm: Array(text.utf8)) == data)
  }

  @Test func valuesAreReadToTheNearestDouble() throws {
    let texts = [
      "0.1", "-0.3", "123456789012345", "1234567890123456789", "2.5e-8", "0.000000000000000000001",
      "-0", "9007199254740993", "1.7976931348623157e308", "4.9e-324", "0x1p-3",
    ]
    for text in texts {
      let data = try SparseDataset(libsvm: "1 1:\(text)\n")
      #expect(data.values[0].bitPattern == Double(text)!.bitPattern, "\(text)")
    }
  }

  /// Every kind of bad line, named by its line number, its token and the reason.
  static let badLines: [(text: String, line: Int, token: String, reason: String)] = [
    ("1 1:1\n2 1:1\n", 2, "2", "the label must be 0 or 1 (or -1 or +1)"),
    ("1 1:1\n\nyes 1:1\n", 3, "yes", "the label is not a number (0/1 or -1/+1)"),
    ("# c\n3:1 4:1\n", 2, "3:1", "the line starts with a feature, not a label (0/1 or -1/+1)"),
    ("1 1:1\n0 2:1 7\n", 2, "7", "a feature must be id:value"),
    ("1 x:1\n", 1, "x:1", "the feature id must be a decimal integer 0...18446744073709551615"),
    ("1 -3:1\n", 1, "-3:1", "the feature id must be a decimal integer 0...18446744073709551615"),
    (
      "1 18446744073709551616:1\n", 1, "18446744073709551616:1",
      "the feature id must be a decimal integer 0...18446744073709551615"
    ),
    ("1 :1\n", 1, ":1", "the feature id must be a decimal integer 0...18446744073709551615"),
    ("1 4:\n", 1, "4:", "the feature value must be a finite number"),
    ("1 4:abc\n", 1, "4:abc", "the feature value must be a finite number"),
    ("1 4:nan\n", 1, "4:nan", "the feature value must be a finite number"),
    ("1 4:inf\n", 1, "4:inf", "the feature value must be a finite number"),
    ("1 4:1e999\n", 1, "4:1e999", "the feature value must be a finite number"),
    ("1 4:1:2\n", 1, "4:1:2", "the feature value must be a finite number"),
    (
      "1 qid:3 1:1\n", 1, "qid:3",
      "qid (a ranking file's query id) is not supported; pstrain reads 0/1 labels"
    ),
    ("1 1:1\n0 2:1 5:1 5:2\n", 2, "5:2", "feature id 5 appears more than once in the line"),
    ("0 9:1 2:1 4:1 2:3\n", 1, "2:3", "feature id 2 appears more than once in the line"),
  ]

  @Test(arguments: badLines)
  func aBadLineIsNamed(text: String, line: Int, token: String, reason: String) {
    #expect(throws: TrainingMathError.malformedRow(line: line, text: token, reason: reason)) {
      try SparseDataset(libsvm: text)
    }
  }

  @Test func theMessageStatesLineTokenAndReason() {
    let error = TrainingMathError.malformedRow(
      line: 4, text: "5:2", reason: "feature id 5 appears more than once in the line")
    #expect(error.description == "line 4: feature id 5 appears more than once in the line: \"5:2\"")
  }

  @Test func unsortedIDsAreKeptInFileOrder() throws {
    let data = try SparseDataset(libsvm: "1 9:1 2:2 4:3\n")
    #expect(data.featureIDs == [9, 2, 4] && data.values == [1, 2, 3])
  }

  @Test func aFileWithoutRowsIsEmpty() {
    #expect(throws: TrainingMathError.emptyDataset) { try SparseDataset(libsvm: "") }
    #expect(throws: TrainingMathError.emptyDataset) { try SparseDataset(libsvm: "# only\n\n") }
  }

  @Test func theWriterSortsIDsAndWritesValuesExactly() throws {
    let data = SparseDataset(
      rowStarts: [0, 3, 3, 5], featureIDs: [9, 2, 4, UInt64.max, 0],
      values: [1, 0.1, -0.0, 2, -3.5], labels: [1, 0, 1])
    #expect(data.libsvm() == "1 2:0.1 4:-0 9:1\n0\n1 0:-3.5 18446744073709551615:2\n")
  }

  @Test func writingThenReadingGivesTheSameBits() throws {
    var generator = SplitMix64(seed: 11)
    var rowStarts = [0]
    var ids: [UInt64] = []
    var values: [Double] = []
    var labels: [Double] = []
    for _ in 0..<300 {
      var id: UInt64 = 0
      for _ in 0..<Int(generator.next() % 12) {
        id += 1 + generator.next() % (UInt64.max / 64)
        ids.append(id)
        switch generator.next() % 6 {
        case 0: values.append(1)
        case 1: values.append(Double(Int64(bitPattern: generator.next()) >> 20))
        case 2: values.append(Double(bitPattern: generator.next() & ~(0x7FF << 52)))  // subnormal
        case 3: values.append(-0.0)
        default:
          let value = Double(bitPattern: generator.next())
          values.append(value.isFinite ? value : 0.5)
        }
      }
      rowStarts.append(ids.count)
      labels.append(Double(generator.next() % 2))
    }
    let data = SparseDataset(rowStarts: rowStarts, featureIDs: ids, values: values, labels: labels)
    let back = try SparseDataset(libsvm: data.libsvm())
    #expect(back.rowStarts == data.rowStarts && back.featureIDs == data.featureIDs)
    #expect(back.values.map(\.bitPattern) == data.values.map(\.bitPattern))
    #expect(back.labels.map(\.bitPattern) == data.labels.map(\.bitPattern))
    #expect(back.fingerprint == data.fingerprint)
    #expect(back.libsvmBytes() == data.libsvmBytes())
  }

  @Test func formatComesFromTheFlagElseTheExtension() throws {
    #expect(DataFormat(path: "clicks.libsvm") == .libsvm)
    #expect(DataFormat(path: "/data/a.b/train.SVM") == .libsvm)
    #expect(DataFormat(path: "x.svmlight") == .libsvm)
    #expect(DataFormat(path: "train.csv") == .csv)
    #expect(DataFormat(path: "/data/libsvm") == .csv)
    #expect(DataFormat(path: ".svm") == .csv)
    #expect(DataFormat(path: "train.txt", explicit: .libsvm) == .libsvm)
    #expect(DataFormat(path: "train.svm", explicit: .csv) == .csv)
    #expect(try DataFormat(parsing: "LIBSVM") == .libsvm)
    #expect(try DataFormat(parsing: "csv") == .csv)
    #expect(throws: TrainingMathError.self) { try DataFormat(parsing: "parquet") }
  }
}
