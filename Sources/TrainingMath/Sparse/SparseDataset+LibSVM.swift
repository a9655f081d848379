/// Reading and writing a sparse dataset as libsvm / svmlight text: one row per
/// line, `label id:value id:value ...`.
extension SparseDataset {
  /// Parses libsvm text. Each line is a label, then `id:value` features separated
  /// by spaces or tabs: the label is 0 or 1, or -1 or +1 (any spelling of those
  /// numbers, as `1.0` or `-1.0`; -1 is stored as 0); an id is a decimal integer
  /// 0...2^64−1; a value is a finite decimal number. Ids need not be ascending
  /// within a line, but may not repeat in it. A `#` starts a comment to the end
  /// of the line; blank lines and comment lines are skipped; lines may end in
  /// `\r\n`. Ranking files (`qid:`) are refused. Errors name the line (from 1),
  /// the token and what is wrong with it.
  public init(libsvm text: String) throws(TrainingMathError) {
    try self.init(libsvmBytes: text.utf8Span.span)
  }

  /// Parses libsvm text given as UTF-8 bytes (a file's contents): see `init(libsvm:)`.
  public init(libsvm bytes: [UInt8]) throws(TrainingMathError) {
    try self.init(libsvmBytes: bytes.span)
  }

  private init(libsvmBytes bytes: Span<UInt8>) throws(TrainingMathError) {
    var rowStarts = [0]
    var featureIDs: [UInt64] = []
    var values: [Double] = []
    var labels: [Double] = []
    // A feature takes 4 bytes at least ("1:1 "); most files use more.
    featureIDs.reserveCapacity(bytes.count / 10)
    values.reserveCapacity(bytes.count / 10)
    var position = 0
    var lineNumber = 0
    while position < bytes.count {
      lineNumber += 1
      var end = position
      while end < bytes.count && bytes[end] != LibSVMSyntax.newline { end += 1 }
      let lineStart = position
      position = end + 1
      var stop = lineStart
      while stop < end && bytes[stop] != LibSVMSyntax.hash { stop += 1 }
      var cursor = LibSVMSyntax.skipBlanks(bytes, from: lineStart, to: stop)
      guard cursor < stop else { continue }
      var tokenEnd = LibSVMSyntax.tokenEnd(bytes, from: cursor, to: stop)
      labels.append(try LibSVMSyntax.label(bytes, from: cursor, to: tokenEnd, line: lineNumber))
      let rowStart = featureIDs.count
      var ascending = true
      var previous: UInt64 = 0
      cursor = LibSVMSyntax.skipBlanks(bytes, from: tokenEnd, to: stop)
      while cursor < stop {
        tokenEnd = LibSVMSyntax.tokenEnd(bytes, from: cursor, to: stop)
        let (id, value) = try LibSVMSyntax.feature(
          bytes, from: cursor, to: tokenEnd, line: lineNumber)
        if featureIDs.count > rowStart && id <= previous {
          if id == previous {
            throw LibSVMSyntax.duplicate(id, bytes, from: cursor, to: tokenEnd, line: lineNumber)
          }
          ascending = false
        }
        previous = id
        featureIDs.append(id)
        values.append(value)
        cursor = LibSVMSyntax.skipBlanks(bytes, from: tokenEnd, to: stop)
      }
      if !ascending {
        let sorted = featureIDs[rowStart...].sorted()
        for index in sorted.indices.dropFirst() where sorted[index] == sorted[index - 1] {
          throw LibSVMSyntax.duplicate(
            sorted[index], bytes, in: lineStart..<stop, line: lineNumber)
        }
      }
      rowStarts.append(featureIDs.count)
    }
    guard !labels.isEmpty else { throw .emptyDataset }
    self.init(rowStarts: rowStarts, featureIDs: featureIDs, values: values, labels: labels)
  }

  /// The dataset as libsvm text: per row the label (`0` or `1`), then its
  /// features as `id:value` in ascending id order, one space apart. Values are
  /// written exactly: integers as integers (`1`, not `1.0`), others in the
  /// shortest form that reads back to the same bits. So `SparseDataset(libsvm:)`
  /// reads the text back to the same dataset when every row's ids are ascending
  /// (and, otherwise, to the same rows with their features sorted). Values must
  /// be finite, as the reader requires.
  public func libsvm() -> String { String(decoding: libsvmBytes(), as: UTF8.self) }

  /// The dataset as libsvm text in UTF-8 bytes, ready for a file: see `libsvm()`.
  public func libsvmBytes() -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(nonzeroCount * 10 + count * 3)
    var order: [Int] = []
    for row in 0..<count {
      LibSVMSyntax.appendNumber(labels[row], to: &out)
      let rowRange = range(ofRow: row)
      order.removeAll(keepingCapacity: true)
      order.append(contentsOf: rowRange)
      if !featureIDs[rowRange].isAscending {
        order.sort { featureIDs[$0] < featureIDs[$1] }
      }
      for position in order {
        out.append(LibSVMSyntax.space)
        LibSVMSyntax.appendInteger(featureIDs[position], to: &out)
        out.append(LibSVMSyntax.colon)
        LibSVMSyntax.appendNumber(values[position], to: &out)
      }
      out.append(LibSVMSyntax.newline)
    }
    return out
  }
}

extension ArraySlice where Element == UInt64 {
  /// Whether every element is below the next.
  fileprivate var isAscending: Bool {
    var index = startIndex
    while index + 1 < endIndex {
      if self[index] >= self[index + 1] { return false }
      index += 1
    }
    return true
  }
}

/// The byte-level pieces of the libsvm reader and writer.
enum LibSVMSyntax {
  static let newline = UInt8(ascii: "\n")
  static let hash = UInt8(ascii: "#")
  static let space = UInt8(ascii: " ")
  static let colon = UInt8(ascii: ":")
  static let zero = UInt8(ascii: "0")

  /// Exact powers of ten 10^0...10^22 (each a Double exactly).
  static let powersOfTen: [Double] = (0...22).map { exponent in
    var power = 1.0
    for _ in 0..<exponent { power *= 10 }
    return power
  }

  /// Whether `byte` separates tokens: a space, a tab or a carriage return.
  @inline(__always)
  static func isBlank(_ byte: UInt8) -> Bool {
    byte == space || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
  }

  /// The first position at or after `start` that is not blank, or `end`.
  @inline(__always)
  static func skipBlanks(_ bytes: Span<UInt8>, from start: Int, to end: Int) -> Int {
    var position = start
    while position < end && isBlank(bytes[position]) { position += 1 }
    return position
  }

  /// The end of the token starting at `start`: the next blank, or `end`.
  @inline(__always)
  static func tokenEnd(_ bytes: Span<UInt8>, from start: Int, to end: Int) -> Int {
    var position = start
    while position < end && !isBlank(bytes[position]) { position += 1 }
    return position
  }

  /// The bytes `start..<end` as text, for messages.
  static func text(_ bytes: Span<UInt8>, from start: Int, to end: Int) -> String {
    var copy: [UInt8] = []
    copy.reserveCapacity(end - start)
    for position in start..<end { copy.append(bytes[position]) }
    return String(decoding: copy, as: UTF8.self)
  }

  /// The label token `start..<end`: 1 for 1 (or +1), 0 for 0 or -1.
  static func label(_ bytes: Span<UInt8>, from start: Int, to end: Int, line: Int)
    throws(TrainingMathError) -> Double
  {
    guard let value = number(bytes, from: start, to: end) else {
      if let colon = (start..<end).first(where: { bytes[$0] == colon }), colon > start {
        throw .malformedRow(
          line: line, text: text(bytes, from: start, to: end),
          reason: "the line starts with a feature, not a label (0/1 or -1/+1)")
      }
      throw .malformedRow(
        line: line, text: text(bytes, from: start, to: end),
        reason: "the label is not a number (0/1 or -1/+1)")
    }
    switch value {
    case 1: return 1
    case 0, -1: return 0
    default:
      throw .malformedRow(
        line: line, text: text(bytes, from: start, to: end),
        reason: "the label must be 0 or 1 (or -1 or +1)")
    }
  }

  /// The feature token `start..<end`: `id:value`.
  @inline(__always)
  static func feature(_ bytes: Span<UInt8>, from start: Int, to end: Int, line: Int)
    throws(TrainingMathError) -> (UInt64, Double)
  {
    var colonAt = start
    while colonAt < end && bytes[colonAt] != colon { colonAt += 1 }
    guard colonAt < end else {
      throw .malformedRow(
        line: line, text: text(bytes, from: start, to: end),
        reason: "a feature must be id:value")
    }
    guard let id = integer(bytes, from: start, to: colonAt) else {
      let token = text(bytes, from: start, to: end)
      if token.hasPrefix("qid:") {
        throw .malformedRow(
          line: line, text: token,
          reason: "qid (a ranking file's query id) is not supported; pstrain reads 0/1 labels")
      }
      throw .malformedRow(
        line: line, text: token,
        reason: "the feature id must be a decimal integer 0...\(UInt64.max)")
    }
    guard let value = number(bytes, from: colonAt + 1, to: end) else {
      throw .malformedRow(
        line: line, text: text(bytes, from: start, to: end),
        reason: "the feature value must be a finite number")
    }
    return (id, value)
  }

  /// The error for feature id `id` repeated in a line, naming the token `start..<end`.
  static func duplicate(
    _ id: UInt64, _ bytes: Span<UInt8>, from start: Int, to end: Int, line: Int
  ) -> TrainingMathError {
    .malformedRow(
      line: line, text: text(bytes, from: start, to: end),
      reason: "feature id \(id) appears more than once in the line")
  }

  /// The error for feature id `id` repeated in the line `range`, naming its second token.
  static func duplicate(_ id: UInt64, _ bytes: Span<UInt8>, in range: Range<Int>, line: Int)
    -> TrainingMathError
  {
    var seen = false
    var cursor = tokenEnd(
      bytes, from: skipBlanks(bytes, from: range.lowerBound, to: range.upperBound),
      to: range.upperBound)
    while cursor < range.upperBound {
      let start = skipBlanks(bytes, from: cursor, to: range.upperBound)
      let end = tokenEnd(bytes, from: start, to: range.upperBound)
      if let (tokenID, _) = try? feature(bytes, from: start, to: end, line: line), tokenID == id {
        if seen { return duplicate(id, bytes, from: start, to: end, line: line) }
        seen = true
      }
      cursor = end
    }
    return duplicate(id, bytes, from: range.lowerBound, to: range.upperBound, line: line)
  }

  /// The decimal integer `start..<end` (digits only), or nil if it is not one or overflows.
  @inline(__always)
  static func integer(_ bytes: Span<UInt8>, from start: Int, to end: Int) -> UInt64? {
    guard start < end else { return nil }
    var value: UInt64 = 0
    for position in start..<end {
      let digit = bytes[position] &- zero
      guard digit < 10 else { return nil }
      let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
      guard !overflow1 && !overflow2 else { return nil }
      value = sum
    }
    return value
  }

  /// The finite number `start..<end`, or nil. Plain decimals of up to 15 digits
  /// (`1`, `-0.25`) are computed directly, exactly as a correctly rounded parser
  /// would (the digits and the power of ten are exact doubles, and one division
  /// rounds once); anything else goes through `Double(_:)`.
  @inline(__always)
  static func number(_ bytes: Span<UInt8>, from start: Int, to end: Int) -> Double? {
    guard start < end else { return nil }
    var position = start
    var negative = false
    if bytes[position] == UInt8(ascii: "-") {
      negative = true
      position += 1
    } else if bytes[position] == UInt8(ascii: "+") {
      position += 1
    }
    var mantissa: UInt64 = 0
    var digits = 0
    var fractionDigits = 0
    var seenPoint = false
    var simple = position < end
    while position < end {
      let byte = bytes[position]
      let digit = byte &- zero
      if digit < 10 {
        mantissa = mantissa &* 10 &+ UInt64(digit)
        digits += 1
        if seenPoint { fractionDigits += 1 }
      } else if byte == UInt8(ascii: ".") && !seenPoint {
        seenPoint = true
      } else {
        simple = false
        break
      }
      position += 1
    }
    if simple && digits > 0 && digits <= 15 {
      let magnitude = Double(mantissa) / powersOfTen[fractionDigits]
      return negative ? -magnitude : magnitude
    }
    guard let value = Double(text(bytes, from: start, to: end)), value.isFinite else {
      return nil
    }
    return value
  }

  /// Appends `value` in decimal.
  static func appendInteger(_ value: UInt64, to out: inout [UInt8]) {
    var divisor: UInt64 = 1
    while value / divisor >= 10 { divisor *= 10 }
    while divisor > 0 {
      out.append(zero + UInt8((value / divisor) % 10))
      divisor /= 10
    }
  }

  /// Appends `value` so that it reads back to the same bits: an integer of
  /// magnitude below 2^53 as digits (`-0` for negative zero), anything else in
  /// Swift's shortest round-trip form.
  static func appendNumber(_ value: Double, to out: inout [UInt8]) {
    if value == value.rounded(.towardZero) && abs(value) < 0x1p53 {
      if value.sign == .minus { out.append(UInt8(ascii: "-")) }
      appendInteger(UInt64(abs(value)), to: &out)
      return
    }
    out.append(contentsOf: value.description.utf8)
  }
}
