/// An ordered list of samples: the tutorial's two, a CSV file of `x,label`
/// rows, or rows generated from a seed.
public struct Dataset: Equatable, Sendable {
  /// The samples, each carrying its row number.
  public let samples: [Sample]

  /// A dataset of `samples` as given.
  public init(samples: [Sample]) { self.samples = samples }

  /// The tutorial's data: x = 1 → ê = −1, x = −1 → ê = 1.
  public static let seed = Dataset(samples: [
    Sample(index: 0, x: 1, label: -1), Sample(index: 1, x: -1, label: 1),
  ])

  /// Number of rows.
  public var count: Int { samples.count }

  /// Parses CSV text: one `x,label` row per line. A first line `x,label` is a
  /// header; blank lines and lines starting with `#` are skipped. Every value
  /// must be a finite decimal number.
  public init(csv text: String) throws(TrainingMathError) {
    var samples: [Sample] = []
    var lineNumber = 0
    // "\r\n" is one Character in Swift, so both line endings are named here.
    let lines = text.split(
      omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    for rawLine in lines {
      lineNumber += 1
      let line = rawLine.trimmingWhitespace()
      if line.isEmpty || line.hasPrefix("#") { continue }
      if samples.isEmpty && lineNumber == 1 && line.lowercased().replacingSpaces() == "x,label" {
        continue
      }
      let fields = line.split(separator: ",", omittingEmptySubsequences: false)
      guard fields.count == 2 else {
        throw .malformedRow(
          line: lineNumber, text: line, reason: "expected 2 fields x,label, found \(fields.count)")
      }
      guard let x = Double(fields[0].trimmingWhitespace()), x.isFinite else {
        throw .malformedRow(line: lineNumber, text: line, reason: "x is not a finite number")
      }
      guard let label = Double(fields[1].trimmingWhitespace()), label.isFinite else {
        throw .malformedRow(line: lineNumber, text: line, reason: "label is not a finite number")
      }
      samples.append(Sample(index: samples.count, x: x, label: label))
    }
    guard !samples.isEmpty else { throw .emptyDataset }
    self.samples = samples
  }

  /// The dataset as CSV with an `x,label` header. Numbers are written in the
  /// shortest form that reads back to the same bits.
  public func csv() -> String {
    var text = "x,label\n"
    for sample in samples { text += "\(sample.x),\(sample.label)\n" }
    return text
  }

  /// `rows` samples from `seed`: x uniform in [−1, 1), label = −x plus Gaussian
  /// noise of standard deviation `noise`. The same arguments give the same bits.
  public static func generate(rows: Int, seed: UInt64, noise: Double = 0) throws(TrainingMathError)
    -> Dataset
  {
    guard rows >= 1, rows <= 100_000_000 else {
      throw .invalidGeneratorSettings("rows must be 1...100000000, got \(rows)")
    }
    guard noise.isFinite, noise >= 0 else {
      throw .invalidGeneratorSettings("noise must be a finite number >= 0, got \(noise)")
    }
    var generator = SplitMix64(seed: seed)
    var samples: [Sample] = []
    samples.reserveCapacity(rows)
    for index in 0..<rows {
      let x = 2 * generator.nextUnit() - 1
      let label = noise > 0 ? -x + noise * generator.nextGaussian() : -x
      samples.append(Sample(index: index, x: x, label: label))
    }
    return Dataset(samples: samples)
  }

  /// FNV-1a over every row's x and label bits: workers compare it to make sure
  /// they all read the same data.
  public var fingerprint: UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for sample in samples {
      for bits in [sample.x.bitPattern, sample.label.bitPattern] {
        for shift in stride(from: 0, to: 64, by: 8) {
          hash = (hash ^ ((bits >> UInt64(shift)) & 0xFF)) &* 0x0000_0100_0000_01B3
        }
      }
    }
    return hash
  }

  /// The rows of `shard` (a contiguous block; see `Shard`), keeping row numbers.
  public func rows(of shard: Shard) -> [Sample] {
    Array(samples[shard.rows(of: samples.count)])
  }
}

extension StringProtocol {
  fileprivate func trimmingWhitespace() -> String {
    let scalars = unicodeScalars
    guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
    let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
    return String(String.UnicodeScalarView(scalars[first...last]))
  }

  fileprivate func replacingSpaces() -> String { String(filter { $0 != " " }) }
}
