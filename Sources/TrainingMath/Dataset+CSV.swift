/// Reading and writing a dataset as CSV text: comma-separated numbers, one row
/// per line, with a header naming the columns.
extension Dataset {
  /// Parses CSV text. The first line (after blank lines and `#` comments, which
  /// are skipped anywhere) is a header naming the columns unless every field in
  /// it is a number; header names may be quoted (`"pixel 1"`). The label is the
  /// column `labelColumn` if given, else the column named `label`, else the last
  /// one; every other column is a feature. A file without a header has its label
  /// last and features named `x` (one) or `x1...xD`, so the tutorial's `x,label`
  /// files, with or without their header, read as before. Fields may have spaces
  /// around them; lines may end in `\r\n`. Every value must be a finite decimal
  /// number, and every row must have as many fields as the header (or the first
  /// row); errors name the line and the column.
  public init(csv text: String, labelColumn: String? = nil) throws(TrainingMathError) {
    var lines = CSVLines(text)
    guard let first = lines.next() else { throw .emptyDataset }
    let header = try CSVHeader(first, in: text)
    let labelIndex = try header.labelIndex(named: labelColumn)
    let columnCount = header.names.count
    let featureCount = columnCount - 1
    // Reserve for as many rows as lines like the first would fill.
    let estimatedRows =
      text.utf8.count / max(1, text.utf8.distance(from: first.start, to: first.end) + 1) + 1
    var features: [Double] = []
    var labels: [Double] = []
    features.reserveCapacity(estimatedRows * featureCount)
    labels.reserveCapacity(estimatedRows)
    var pending = header.isData ? first : lines.next()
    while let line = pending {
      var column = 0
      var fieldStart = line.start
      var position = line.start
      while true {
        let atEnd = position == line.end
        if atEnd || text.utf8[position] == CSVLines.comma {
          guard column < columnCount else {
            throw .wrongFieldCount(
              line: line.number, expected: columnCount, found: line.fieldCount(in: text),
              hasHeader: !header.isData)
          }
          guard let value = CSVLines.number(in: text, from: fieldStart, to: position) else {
            let found = line.fieldCount(in: text)
            guard found == columnCount else {
              throw .wrongFieldCount(
                line: line.number, expected: columnCount, found: found, hasHeader: !header.isData)
            }
            throw .invalidNumber(
              line: line.number, column: header.names[column],
              text: String(CSVLines.trimmed(text, from: fieldStart, to: position)))
          }
          if column == labelIndex { labels.append(value) } else { features.append(value) }
          column += 1
          if atEnd { break }
          fieldStart = text.utf8.index(after: position)
        }
        text.utf8.formIndex(after: &position)
      }
      guard column == columnCount else {
        throw .wrongFieldCount(
          line: line.number, expected: columnCount, found: column, hasHeader: !header.isData)
      }
      pending = lines.next()
    }
    guard !labels.isEmpty else { throw .emptyDataset }
    var featureNames = header.names
    let labelName = featureNames.remove(at: labelIndex)
    self.init(featureNames: featureNames, labelName: labelName, features: features, labels: labels)
  }

  /// The dataset as CSV text: a header of the column names (features, then the
  /// label; quoted where a name would not read back as itself), then one line per
  /// row. Numbers are written in the shortest form that reads back to the same
  /// bits, and labels that are all class indices as integers (`2`, not `2.0`).
  public func csv() -> String {
    var text = (featureNames + [labelName]).map(CSVHeader.quotedIfNeeded).joined(separator: ",")
    text += "\n"
    text.reserveCapacity(text.utf8.count + count * (featureCount + 1) * 20)
    let integerLabels = labelsAreClassIndices
    for row in 0..<count {
      for value in features(ofRow: row) {
        text += value.description
        text += ","
      }
      text += integerLabels ? String(Int(labels[row])) : labels[row].description
      text += "\n"
    }
    return text
  }
}

/// The lines of CSV text that hold data: blank lines and lines starting with `#`
/// are skipped, and each line's surrounding spaces and `\r` are left out.
struct CSVLines {
  /// One line: its number (from 1) and its bounds in the text's UTF-8 view.
  struct Line {
    var number: Int
    var start: String.Index
    var end: String.Index

    /// The number of comma-separated fields of the line (for error messages).
    func fieldCount(in text: String) -> Int {
      text.utf8[start..<end].reduce(1) { $0 + ($1 == CSVLines.comma ? 1 : 0) }
    }
  }

  static let comma = UInt8(ascii: ",")
  static let quote = UInt8(ascii: "\"")

  private let text: String
  private var position: String.Index
  private var number = 0

  init(_ text: String) {
    self.text = text
    position = text.utf8.startIndex
  }

  /// The next line that holds data, or nil at the end of the text.
  mutating func next() -> Line? {
    let bytes = text.utf8
    while position != bytes.endIndex {
      number += 1
      let newline = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
      let (start, end) = Self.trimmedBounds(text, from: position, to: newline)
      position = newline == bytes.endIndex ? newline : bytes.index(after: newline)
      if start != end && bytes[start] != UInt8(ascii: "#") {
        return Line(number: number, start: start, end: end)
      }
    }
    return nil
  }

  /// Whether `byte` is a space, a tab or a carriage return.
  static func isBlank(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
  }

  /// `start..<end` of `text` without blanks at either end.
  static func trimmedBounds(_ text: String, from start: String.Index, to end: String.Index)
    -> (String.Index, String.Index)
  {
    let bytes = text.utf8
    var start = start
    var end = end
    while start != end && isBlank(bytes[start]) { bytes.formIndex(after: &start) }
    while start != end && isBlank(bytes[bytes.index(before: end)]) { bytes.formIndex(before: &end) }
    return (start, end)
  }

  /// The field `start..<end` of `text` without blanks at either end.
  static func trimmed(_ text: String, from start: String.Index, to end: String.Index) -> Substring {
    let (start, end) = trimmedBounds(text, from: start, to: end)
    return text[start..<end]
  }

  /// The field `start..<end` as a finite number (blanks around it, and quotes
  /// around a whole field, allowed), or nil.
  static func number(in text: String, from start: String.Index, to end: String.Index) -> Double? {
    var (start, end) = trimmedBounds(text, from: start, to: end)
    let bytes = text.utf8
    if start != end, bytes[start] == quote, bytes.distance(from: start, to: end) >= 2,
      bytes[bytes.index(before: end)] == quote
    {
      bytes.formIndex(after: &start)
      bytes.formIndex(before: &end)
    }
    guard let value = Double(text[start..<end]), value.isFinite else { return nil }
    return value
  }
}
