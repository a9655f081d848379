import Foundation
import Roles

/// An SVG picture of a run: the loss over updates (on the training data, and
/// on held-out data when evaluated), the accuracy on held-out data when the
/// model classifies, and each audit's relative error over updates; losses and
/// errors on log scales, with the audit tolerance marked.
/// An audit below rounding noise measured no relative error: it is drawn
/// apart, as an open grey circle at the smallest relative error it could have
/// flagged (its noise bound), never as if its error were that large.
struct TrainingPlot {
  /// (update, mean loss over the data).
  var loss: [(Double, Double)] = []
  /// (update, mean loss over the held-out data), at each evaluation.
  var testLoss: [(Double, Double)] = []
  /// (update, fraction of the held-out data classified right), at each evaluation.
  var testAccuracy: [(Double, Double)] = []
  /// One audit: when, its largest relative error, and its verdict.
  struct Audit {
    var update: Double
    var relativeError: Double
    var passed: Bool
    /// False when rounding noise dominated the comparison.
    var conclusive: Bool
    /// The smallest relative error it would have flagged (tolerance plus noise).
    var detectableRelativeError: Double = .infinity
    /// The size of the audited gradient.
    var gradientMagnitude: Double = 0
  }

  /// How one audit is drawn: where, in what colour, open or filled.
  struct Mark {
    var x: Double
    var y: Double
    var color: String
    var open = false
  }

  static let passedColor = "#2ca02c"
  static let failedColor = "#d62728"
  static let noiseColor = "#888888"
  static let trainColor = "#1f77b4"
  static let testColor = "#ff7f0e"

  /// The audits as marks: passed and failed ones at their relative error,
  /// those below rounding noise at their noise bound, open.
  var auditMarks: [Mark] {
    audits.compactMap { audit in
      if !audit.passed {
        return Mark(x: audit.update, y: audit.relativeError, color: Self.failedColor)
      }
      if audit.conclusive {
        return Mark(x: audit.update, y: audit.relativeError, color: Self.passedColor)
      }
      guard audit.detectableRelativeError.isFinite else { return nil }  // a zero gradient
      return Mark(
        x: audit.update, y: audit.detectableRelativeError, color: Self.noiseColor, open: true)
    }
  }

  /// The legend of the audit panel: one entry per kind of mark present.
  var auditLegend: [(Mark, String)] {
    var entries: [(Mark, String)] = []
    if audits.contains(where: { $0.passed && $0.conclusive }) {
      entries.append((Mark(x: 0, y: 0, color: Self.passedColor), "passed, at its relative error"))
    }
    if audits.contains(where: { !$0.passed }) {
      entries.append((Mark(x: 0, y: 0, color: Self.failedColor), "failed"))
    }
    // Their typical size (the median): the legend speaks for most of them.
    let sizes = audits.filter { $0.passed && !$0.conclusive }.map(\.gradientMagnitude).sorted()
    if !sizes.isEmpty {
      entries.append(
        (
          Mark(x: 0, y: 0, color: Self.noiseColor, open: true),
          "\(sizes.count) \(AuditReport.belowRoundingNoise(magnitude: sizes[sizes.count / 2])), at the error each could flag"
        ))
    }
    return entries
  }

  var audits: [Audit] = []
  var tolerance: Double
  var title: String

  private let width = 760.0
  private let panelHeight = 230.0
  private let left = 80.0
  private let right = 24.0

  func svg() -> String {
    let legend = auditLegend
    let accuracyPanel = !testAccuracy.isEmpty
    let panels = accuracyPanel ? 3.0 : 2.0
    let height = panels * panelHeight + 150 + 50 * (panels - 2) + 16 * Double(legend.count)
    var out = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(left)" y="24" font-size="16" font-weight="bold">\(escape(title))</text>

      """
    let maxUpdate = max(
      1, (loss.map(\.0) + testLoss.map(\.0) + audits.map(\.update)).max() ?? 1)
    // The training loss first: its polyline is the first of the picture.
    out += panel(
      top: 60,
      label: testLoss.isEmpty
        ? "loss (mean over the data)"
        : "loss (mean over the data: training, blue; held-out, orange)",
      maxX: maxUpdate,
      series: [(loss, Self.trainColor), (testLoss, Self.testColor)],
      points: testLoss.map { Mark(x: $0.0, y: $0.1, color: Self.testColor) }, threshold: nil)
    var auditTop = 60 + panelHeight + 50
    if accuracyPanel {
      out += panel(
        top: auditTop, label: "accuracy on the held-out data", maxX: maxUpdate,
        series: [(testAccuracy, Self.testColor)],
        points: testAccuracy.map { Mark(x: $0.0, y: $0.1, color: Self.testColor) },
        threshold: nil, unitScale: true)
      auditTop += panelHeight + 50
    }
    out += panel(
      top: auditTop, label: "audit relative error", maxX: maxUpdate, series: [],
      points: auditMarks, threshold: tolerance)
    let axisLabel = auditTop + panelHeight + 30
    out +=
      "<text x=\"\(left + (width - left - right) / 2)\" y=\"\(axisLabel)\" text-anchor=\"middle\">updates applied</text>\n"
    for (index, (mark, label)) in legend.enumerated() {
      let y = axisLabel + 16 * Double(index + 1)
      out += circle(Mark(x: left + 6, y: y - 4, color: mark.color, open: mark.open))
      out +=
        "<text class=\"legend\" x=\"\(left + 16)\" y=\"\(y)\" font-size=\"11\">\(escape(label))</text>\n"
    }
    return out + "</svg>\n"
  }

  /// One mark at SVG coordinates (`x`, `y`).
  private func circle(_ mark: Mark) -> String {
    mark.open
      ? "<circle cx=\"\(mark.x)\" cy=\"\(mark.y)\" r=\"3\" fill=\"none\" stroke=\"\(mark.color)\" stroke-width=\"1.2\"/>\n"
      : "<circle cx=\"\(mark.x)\" cy=\"\(mark.y)\" r=\"2.5\" fill=\"\(mark.color)\"/>\n"
  }

  private func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
  }

  /// One panel with a log10 y axis spanning the data's decades, or with
  /// `unitScale` a linear one from 0 to 1 (for fractions).
  private func panel(
    top: Double, label: String, maxX: Double, series: [([(Double, Double)], String)],
    points: [Mark], threshold: Double?, unitScale: Bool = false
  ) -> String {
    let plotWidth = width - left - right
    let values =
      series.flatMap { $0.0.map(\.1) } + points.map(\.y) + (threshold.map { [$0] } ?? [])
    let positive = values.filter { $0 > 0 && $0.isFinite }
    let low = floor(log10(positive.min() ?? 1e-12))
    let high = max(low + 1, ceil(log10(positive.max() ?? 1)))
    func x(_ value: Double) -> Double { left + plotWidth * value / maxX }
    func y(_ value: Double) -> Double {
      if unitScale { return top + panelHeight * (1 - min(1, max(0, value))) }
      let clamped = max(value, pow(10, low))
      return top + panelHeight * (1 - (log10(clamped) - low) / (high - low))
    }
    var out =
      "<g>\n<text x=\"\(left)\" y=\"\(top - 6)\" font-weight=\"bold\">\(escape(label))</text>\n"
    out +=
      "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(panelHeight)\" fill=\"none\" stroke=\"#444\"/>\n"
    // Grid lines: every decade (at most 8) on a log axis, every quarter on a unit one.
    let grid =
      unitScale
      ? stride(from: 0.0, through: 1, by: 0.25).map { ($0, "\(Int($0 * 100))%") }
      : stride(from: Int(low), through: Int(high), by: max(1, Int((high - low) / 8))).map {
        (pow(10, Double($0)), "1e\($0)")
      }
    for (value, text) in grid {
      let yy = y(value)
      out +=
        "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(left + plotWidth)\" y2=\"\(yy)\" stroke=\"#ddd\"/>\n"
      out += "<text x=\"\(left - 6)\" y=\"\(yy + 4)\" text-anchor=\"end\">\(text)</text>\n"
    }
    for tick in 0...4 {
      let value = maxX * Double(tick) / 4
      out +=
        "<text x=\"\(x(value))\" y=\"\(top + panelHeight + 16)\" text-anchor=\"middle\">\(Int(value))</text>\n"
    }
    for (data, color) in series where !data.isEmpty {
      // A diverged run's infinite or NaN losses have no place on a log axis.
      let path = data.filter { $0.1.isFinite }.map { "\(x($0.0)),\(y($0.1))" }.joined(
        separator: " ")
      out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
    }
    for mark in points {
      out += circle(Mark(x: x(mark.x), y: y(mark.y), color: mark.color, open: mark.open))
    }
    if let threshold {
      let yy = y(threshold)
      out +=
        "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(left + plotWidth)\" y2=\"\(yy)\" stroke=\"#d62728\" stroke-dasharray=\"6 4\"/>\n"
      out +=
        "<text x=\"\(left + plotWidth - 4)\" y=\"\(yy - 4)\" text-anchor=\"end\" fill=\"#d62728\">tolerance \(threshold)</text>\n"
    }
    return out + "</g>\n"
  }
}
