/// The column names of a CSV file: read from its first line, or made up
/// (`x` / `x1...xD`, then `label`) when that line is already data.
struct CSVHeader {
  /// Every column's name, in file order.
  let names: [String]
  /// Whether the first line is a row of numbers rather than names.
  let isData: Bool
  /// The line the names came from.
  let line: Int

  /// The header of a file whose first data-holding line, numbered `line`, is `text`. A line is
  /// data when every field is an unquoted number; it needs at least two fields
  /// either way (a feature and the label). Names may be quoted, with `""` for a
  /// quote inside; they must be non-empty and distinct.
  init(_ text: Substring, line: Int) throws(TrainingMathError) {
    self.line = line
    let fields = try Self.fields(of: text, line: line)
    isData = fields.allSatisfy { !$0.quoted && Double($0.text) != nil }
    guard fields.count >= 2 else {
      throw .malformedRow(
        line: line, text: String(text),
        reason: "expected at least 2 columns (features, then the label), found 1")
    }
    if isData {
      let features = fields.count - 1
      names = (features == 1 ? ["x"] : (1...features).map { "x\($0)" }) + ["label"]
      return
    }
    names = fields.map(\.text)
    var seen: [String: Int] = [:]
    for (index, name) in names.enumerated() {
      guard !name.isEmpty else {
        throw .invalidHeader(line: line, reason: "column \(index + 1) has no name")
      }
      if let earlier = seen[name] {
        throw .invalidHeader(
          line: line,
          reason:
            "column \"\(name.prefix(80))\" appears twice (columns \(earlier + 1) and \(index + 1))"
        )
      }
      seen[name] = index
    }
  }

  /// The label's column: `requested` if given, else the one named `label` (in
  /// any case), else the last.
  func labelIndex(named requested: String?) throws(TrainingMathError) -> Int {
    if let requested {
      guard let index = names.firstIndex(of: requested) else {
        throw .missingLabelColumn(name: requested, columns: names)
      }
      return index
    }
    return names.firstIndex(of: "label") ?? names.firstIndex { $0.lowercased() == "label" }
      ?? names.count - 1
  }

  /// `name` as a header field that reads back as itself: quoted (with inner
  /// quotes doubled) when it holds a comma or quote, has blanks around it, starts
  /// with `#`, or reads as a number.
  static func quotedIfNeeded(_ name: String) -> String {
    let bytes = name.utf8
    let needsQuotes =
      bytes.isEmpty || bytes.contains(CSVLines.comma) || bytes.contains(CSVLines.quote)
      || bytes.first == UInt8(ascii: "#") || CSVLines.isBlank(bytes.first!)
      || CSVLines.isBlank(bytes.last!) || bytes.contains(UInt8(ascii: "\n"))
      || Double(name) != nil
    guard needsQuotes else { return name }
    var quoted = "\""
    for character in name { quoted += character == "\"" ? "\"\"" : String(character) }
    return quoted + "\""
  }

  /// The comma-separated fields of a header line, trimmed, with quotes undone.
  private static func fields(of line: Substring, line number: Int) throws(TrainingMathError)
    -> [(text: String, quoted: Bool)]
  {
    var fields: [(text: String, quoted: Bool)] = []
    var current = ""
    var quoted = false
    var insideQuotes = false
    var justClosed = false
    func finish() {
      fields.append((quoted ? current : String(trimmedBlanks(current)), quoted))
      current = ""
      quoted = false
    }
    for character in line {
      let wasJustClosed = justClosed
      justClosed = false
      if insideQuotes {
        if character == "\"" {
          insideQuotes = false
          justClosed = true
        } else {
          current.append(character)
        }
      } else if character == "," {
        finish()
      } else if !quoted {
        // A quote opens a quoted name only where the name starts; elsewhere it is a character.
        if character == "\"" && trimmedBlanks(current).isEmpty {
          current = ""
          quoted = true
          insideQuotes = true
        } else {
          current.append(character)
        }
      } else if character == "\"" && wasJustClosed {
        current.append("\"")  // a doubled quote inside a quoted name
        insideQuotes = true
      } else if character != " " && character != "\t" {
        throw .invalidHeader(line: number, reason: "text after the closing quote of \"\(current)\"")
      }
    }
    guard !insideQuotes else {
      throw .invalidHeader(line: number, reason: "a quote is not closed")
    }
    finish()
    return fields
  }

  private static func trimmedBlanks(_ text: String) -> Substring {
    let bytes = text.utf8
    let start = bytes.firstIndex { !CSVLines.isBlank($0) } ?? bytes.endIndex
    let end = bytes.lastIndex { !CSVLines.isBlank($0) }.map { bytes.index(after: $0) } ?? start
    return text[start..<max(start, end)]
  }
}
