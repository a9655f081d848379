import Testing

@testable import TrainingMath

@Suite struct DatasetCSVTests {
  @Test func headerNamesTheFeaturesAndTheLabel() throws {
    let dataset = try Dataset(csv: "a, b ,label\n1,2,0\n3, 4 ,1\n")
    #expect(dataset.featureNames == ["a", "b"])
    #expect(dataset.labelName == "label")
    #expect(dataset.featureCount == 2)
    #expect(dataset.features == [1, 2, 3, 4])
    #expect(dataset.labels == [0, 1])
    #expect(Array(dataset.features(ofRow: 1)) == [3, 4])
  }

  @Test func labelIsTheNamedColumnElseLabelElseTheLast() throws {
    let middle = try Dataset(csv: "a,label,b\n1,2,3\n")
    #expect(middle.featureNames == ["a", "b"])
    #expect(middle.features == [1, 3] && middle.labels == [2])
    let anyCase = try Dataset(csv: "Label,a\n1,2\n")
    #expect(anyCase.labelName == "Label" && anyCase.labels == [1])
    let last = try Dataset(csv: "p,q,y\n1,2,3\n")
    #expect(last.featureNames == ["p", "q"] && last.labelName == "y" && last.labels == [3])
    let chosen = try Dataset(csv: "a,label,b\n1,2,3\n", labelColumn: "a")
    #expect(chosen.featureNames == ["label", "b"])
    #expect(chosen.features == [2, 3] && chosen.labels == [1])
    let headerless = try Dataset(csv: "1,2,3\n", labelColumn: "x1")
    #expect(headerless.featureNames == ["x2", "label"] && headerless.labels == [1])
  }

  @Test func aMissingLabelColumnListsTheHeader() {
    #expect(
      throws: TrainingMathError.missingLabelColumn(name: "y", columns: ["a", "b", "label"])
    ) { try Dataset(csv: "a,b,label\n1,2,3\n", labelColumn: "y") }
    #expect(
      TrainingMathError.missingLabelColumn(name: "y", columns: ["a", "b", "label"]).description
        == "no column \"y\" for the label; the columns are \"a\", \"b\", \"label\"")
    let many = (0..<20).map { "c\($0)" }
    #expect(
      TrainingMathError.missingLabelColumn(name: "y", columns: many).description.hasSuffix(
        "\"c11\", ... (20 in all)"))
  }

  @Test func oldFilesReadAsBefore() throws {
    let expected = Dataset(samples: [
      Sample(index: 0, x: 0.5, label: -0.5), Sample(index: 1, x: -2, label: 2),
    ])
    for text in [
      "x,label\n0.5,-0.5\n-2,2\n", "0.5,-0.5\n-2,2", " X , LABEL \r\n0.5 , -0.5\r\n-2,2\r\n",
    ] {
      let dataset = try Dataset(csv: text)
      #expect(dataset.features == expected.features && dataset.labels == expected.labels, "\(text)")
      #expect(dataset.featureCount == 1)
    }
    #expect(try Dataset(csv: "\u{FEFF}0.5,-0.5\n").labels == [-0.5])  // a byte order mark
    #expect(try Dataset(csv: "\u{FEFF}a,label\n1,2\n").featureNames == ["a"])
    #expect(try Dataset(csv: "0.5,-0.5\n").featureNames == ["x"])
    #expect(try Dataset(csv: "0.5,-0.5\n").labelName == "label")
    let wide = try Dataset(csv: "1,2,3,4\n5,6,7,8\n")
    #expect(wide.featureNames == ["x1", "x2", "x3"] && wide.labelName == "label")
    #expect(wide.features == [1, 2, 3, 5, 6, 7] && wide.labels == [4, 8])
  }

  @Test func blankLinesCommentsAndSpacesAreSkipped() throws {
    let text = "\n# made by hand\n  \t\na,label\r\n\n  # between rows\n 1 ,\t2 \r\n\"3\",4\n\n"
    let dataset = try Dataset(csv: text)
    #expect(dataset.features == [1, 3] && dataset.labels == [2, 4])
  }

  @Test func headerNamesMayBeQuoted() throws {
    let dataset = try Dataset(csv: "\"pixel 1\", \"a,b\" ,\"say \"\"hi\"\"\",label\n1,2,3,4\n")
    #expect(dataset.featureNames == ["pixel 1", "a,b", "say \"hi\""])
    // A quote inside an unquoted name is a character of it.
    #expect(try Dataset(csv: "pixel \"1\",label\n1,2\n").featureNames == ["pixel \"1\""])
    #expect(
      throws: TrainingMathError.invalidHeader(
        line: 1, reason: "text after the closing quote of \"a\"")
    ) {
      try Dataset(csv: "\"a\" \"b\",label\n1,2\n")
    }
    #expect(throws: TrainingMathError.invalidHeader(line: 1, reason: "column 1 has no name")) {
      try Dataset(csv: "\"\",label\n1,2\n")
    }
    // A quoted number is a name, so the line is a header.
    #expect(try Dataset(csv: "\"1\",\"2\"\n3,4\n").featureNames == ["1"])
  }

  @Test func aBadFieldNamesItsLineAndColumn() {
    let header = (0..<64).map { "p\($0)" }.joined(separator: ",") + ",label\n"
    let row = Array(repeating: "0.5", count: 65)
    var rows = Array(repeating: row, count: 8)
    rows[4][12] = "abc"  // line 7: the header, a comment, then rows
    let text =
      header + "# a comment\n" + rows.map { $0.joined(separator: ",") }.joined(separator: "\n")
    #expect(throws: TrainingMathError.invalidNumber(line: 7, column: "p12", text: "abc")) {
      try Dataset(csv: text)
    }
    #expect(
      TrainingMathError.invalidNumber(line: 7, column: "p12", text: "abc").description
        == "line 7, column \"p12\": \"abc\" is not a finite number")
    var short = Array(repeating: row, count: 8)
    short[6].removeLast()  // line 9
    let shortText =
      header + "# a comment\n" + short.map { $0.joined(separator: ",") }.joined(separator: "\n")
    #expect(
      throws: TrainingMathError.wrongFieldCount(line: 9, expected: 65, found: 64, hasHeader: true)
    ) { try Dataset(csv: shortText) }
    #expect(
      TrainingMathError.wrongFieldCount(line: 9, expected: 65, found: 64, hasHeader: true)
        .description == "line 9: expected 65 fields like the header, found 64")
    #expect(
      TrainingMathError.wrongFieldCount(line: 2, expected: 2, found: 1, hasHeader: false)
        .description == "line 2: expected 2 fields like the first row, found 1")
  }

  @Test func everyBadFieldIsCaught() {
    let cases: [(String, TrainingMathError)] = [
      ("a,label\n1,\n", .invalidNumber(line: 2, column: "label", text: "")),
      ("a,label\n,1\n", .invalidNumber(line: 2, column: "a", text: "")),
      ("a,label\n1,2\n1e999,2\n", .invalidNumber(line: 3, column: "a", text: "1e999")),
      ("a,label\n1,-inf\n", .invalidNumber(line: 2, column: "label", text: "-inf")),
      ("a,label\n1,2 3\n", .invalidNumber(line: 2, column: "label", text: "2 3")),
      ("a,b,label\n1,2,\"3\n", .invalidNumber(line: 2, column: "label", text: "\"3")),
      // A bad value in a row of the wrong length is blamed on the length.
      ("a,b,label\nx,2\n", .wrongFieldCount(line: 2, expected: 3, found: 2, hasHeader: true)),
      ("a,b,label\n1,2,3,x\n", .wrongFieldCount(line: 2, expected: 3, found: 4, hasHeader: true)),
      ("1,2\n3,4,5\n", .wrongFieldCount(line: 2, expected: 2, found: 3, hasHeader: false)),
      ("1,2\n\n3 4\n", .wrongFieldCount(line: 3, expected: 2, found: 1, hasHeader: false)),
    ]
    for (text, error) in cases {
      #expect(throws: error, "\(text)") { try Dataset(csv: text) }
    }
  }

  @Test func aBadHeaderIsNamed() {
    let cases: [(String, TrainingMathError)] = [
      ("a,,label\n1,2,3\n", .invalidHeader(line: 1, reason: "column 2 has no name")),
      (
        "\n\na,b,a\n1,2,3\n",
        .invalidHeader(line: 3, reason: "column \"a\" appears twice (columns 1 and 3)")
      ),
      ("\"a,label\n1,2\n", .invalidHeader(line: 1, reason: "a quote is not closed")),
      (
        "\"a\"b,label\n1,2\n",
        .invalidHeader(line: 1, reason: "text after the closing quote of \"a\"")
      ),
      (
        "label\n1\n",
        .malformedRow(
          line: 1, text: "label",
          reason: "expected at least 2 columns (features, then the label), found 1")
      ),
      (
        "# one column\n7\n",
        .malformedRow(
          line: 2, text: "7",
          reason: "expected at least 2 columns (features, then the label), found 1")
      ),
      ("", .emptyDataset),
      ("a,label\n", .emptyDataset),
    ]
    for (text, error) in cases {
      #expect(throws: error, "\(text)") { try Dataset(csv: text) }
    }
    #expect(
      TrainingMathError.invalidHeader(line: 1, reason: "column 2 has no name").description
        == "line 1: invalid header: column 2 has no name")
  }

  @Test func csvReadsBackToTheSameBits() throws {
    let awkward: [Double] = [
      -0.0, 0, 0.1, 1.0 / 3, Double(bitPattern: 0x8000_0000_1234_5678),  // a subnormal
      .leastNonzeroMagnitude, .greatestFiniteMagnitude, -1e22, 123_456_789_012_345_680,
      0x1.fffffffffffffp-1,
    ]
    let dataset = Dataset(
      featureNames: ["a,b", "1", " x", "#c", "q\"", "plain"], labelName: "target",
      features: awkward + awkward.reversed().prefix(8), labels: [0.5, -0.0, 7])
    let text = dataset.csv()
    #expect(text.hasPrefix("\"a,b\",\"1\",\" x\",\"#c\",\"q\"\"\",plain,target\n"))
    let read = try Dataset(csv: text)
    #expect(read.features.map(\.bitPattern) == dataset.features.map(\.bitPattern))
    #expect(read.labels.map(\.bitPattern) == dataset.labels.map(\.bitPattern))
    #expect(read.featureNames == dataset.featureNames && read.labelName == dataset.labelName)
    #expect(read.fingerprint == dataset.fingerprint)
  }

  @Test func classLabelsAreWrittenAsIntegers() throws {
    let dataset = Dataset(
      featureNames: ["f0"], labelName: "label", features: [0.5, -1], labels: [0, 2])
    #expect(dataset.csv() == "f0,label\n0.5,0\n-1.0,2\n")
    #expect(try Dataset(csv: dataset.csv()) == dataset)
    // A label that is not a class index writes every label in full.
    let mixed = Dataset(
      featureNames: ["f0"], labelName: "label", features: [0.5, -1], labels: [1, -1])
    #expect(mixed.csv() == "f0,label\n0.5,1.0\n-1.0,-1.0\n")
  }
}
