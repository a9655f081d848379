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
  /// around them; lines may end in `\r\n`; a byte order mark is skipped. Every
  /// value must be a finite decimal number, and every row must have as many
  /// fields as the header (or the first row); errors name the line and the column.
  public init(csv text: String, labelColumn: String? = nil) throws(TrainingMathError) {
    let bytes = text.utf8Span.span
    var lines = CSVLines(skippingByteOrderMarkOf: bytes)
    guard let first = lines.next(in: bytes) else { throw .emptyDataset }
    let header = try CSVHeader(first.text(of: text), line: first.number)
    let labelIndex = try header.labelIndex(named: labelColumn)
    let columnCount = header.names.count
    var pending = header.isData ? first : lines.next(in: bytes)
    // Reserve for as many rows as lines like the first row would fill, and no
    // more than could fit (a row takes two bytes a column at least).
    let firstRowBytes = pending.map { $0.end - $0.start + 1 } ?? bytes.count
    let estimatedRows = min(bytes.count / firstRowBytes, bytes.count / (2 * columnCount)) + 1
    var features: [Double] = []
    var labels: [Double] = []
    features.reserveCapacity(estimatedRows * (columnCount - 1))
    labels.reserveCapacity(estimatedRows)
    while let line = pending {
      var column = 0
      var fieldStart = line.start
      for position in line.start...line.end
      where position == line.end || bytes[position] == CSVLines.comma {
        guard column < columnCount,
          let value = CSVLines.number(in: text, bytes, from: fieldStart, to: position)
        else {
          let found = line.fieldCount(in: bytes)
          guard found == columnCount else {
            throw .wrongFieldCount(
              line: line.number, expected: columnCount, found: found, hasHeader: !header.isData)
          }
          let (start, end) = CSVLines.trimmedBounds(bytes, from: fieldStart, to: position)
          throw .invalidNumber(
            line: line.number, column: header.names[column],
            text: String(CSVLines.substring(of: text, from: start, to: end)))
        }
        if column == labelIndex { labels.append(value) } else { features.append(value) }
        column += 1
        fieldStart = position + 1
      }
      guard column == columnCount else {
        throw .wrongFieldCount(
          line: line.number, expected: columnCount, found: column, hasHeader: !header.isData)
      }
      pending = lines.next(in: bytes)
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
/// are skipped, and each line's surrounding spaces and `\r` are left out. Lines
/// and fields are found on the text's UTF-8 bytes, by offset.
struct CSVLines {
  /// One line: its number (from 1) and its bounds as UTF-8 offsets.
  struct Line {
    var number: Int
    var start: Int
    var end: Int

    /// The line's text.
    func text(of text: String) -> Substring { CSVLines.substring(of: text, from: start, to: end) }

    /// The number of comma-separated fields of the line (for error messages).
    func fieldCount(in bytes: Span<UInt8>) -> Int {
      var count = 1
      for position in start..<end where bytes[position] == CSVLines.comma { count += 1 }
      return count
    }
  }

  static let comma = UInt8(ascii: ",")
  static let quote = UInt8(ascii: "\"")
  static let newline = UInt8(ascii: "\n")

  private var position = 0
  private var number = 0

  /// Lines from the start of `bytes`, after a UTF-8 byte order mark if there is
  /// one (spreadsheets write it).
  init(skippingByteOrderMarkOf bytes: Span<UInt8>) {
    if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { position = 3 }
  }

  /// The next line of `bytes` that holds data, or nil at the end.
  mutating func next(in bytes: Span<UInt8>) -> Line? {
    while position < bytes.count {
      number += 1
      var end = position
      while end < bytes.count && bytes[end] != Self.newline { end += 1 }
      let (start, trimmedEnd) = Self.trimmedBounds(bytes, from: position, to: end)
      position = end + 1
      if start != trimmedEnd && bytes[start] != UInt8(ascii: "#") {
        return Line(number: number, start: start, end: trimmedEnd)
      }
    }
    return nil
  }

  /// Whether `byte` is a space, a tab or a carriage return.
  static func isBlank(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
  }

  /// `start..<end` without blanks at either end.
  static func trimmedBounds(_ bytes: Span<UInt8>, from start: Int, to end: Int) -> (Int, Int) {
    var start = start
    var end = end
    while start != end && isBlank(bytes[start]) { start += 1 }
    while start != end && isBlank(bytes[end - 1]) { end -= 1 }
    return (start, end)
  }

  /// The UTF-8 bytes `start..<end` of `text` as a substring (offsets at ASCII
  /// bytes, so on scalar boundaries).
  static func substring(of text: String, from start: Int, to end: Int) -> Substring {
    let utf8 = text.utf8
    let from = utf8.index(utf8.startIndex, offsetBy: start)
    return text[from..<utf8.index(from, offsetBy: end - start)]
  }

  /// The field `start..<end` as a finite number (blanks around it, and quotes
  /// around a whole field, allowed), or nil.
  static func number(in text: String, _ bytes: Span<UInt8>, from start: Int, to end: Int)
    -> Double?
  {
    var (start, end) = trimmedBounds(bytes, from: start, to: end)
    if end - start >= 2 && bytes[start] == quote && bytes[end - 1] == quote {
      start += 1
      end -= 1
    }
    guard let value = Double(substring(of: text, from: start, to: end)), value.isFinite else {
      return nil
    }
    return value
  }
}
