import Foundation

/// An SVG picture of a run: the loss over updates and each audit's relative
/// error over updates, both on log scales, with the audit tolerance marked.
struct TrainingPlot {
  /// (update, mean loss over the data).
  var loss: [(Double, Double)] = []
  /// One audit: when, its largest relative error, and its verdict.
  struct Audit {
    var update: Double
    var relativeError: Double
    var passed: Bool
    /// False when rounding noise dominated the comparison.
    var conclusive: Bool
  }

  var audits: [Audit] = []
  var tolerance: Double
  var title: String

  private let width = 760.0
  private let panelHeight = 230.0
  private let left = 80.0
  private let right = 24.0

  func svg() -> String {
    let height = 2 * panelHeight + 150
    var out = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(left)" y="24" font-size="16" font-weight="bold">\(escape(title))</text>

      """
    let maxUpdate = max(1, (loss.map(\.0) + audits.map(\.update)).max() ?? 1)
    out += panel(
      top: 60, label: "loss (mean over the data)", maxX: maxUpdate,
      series: [(loss.map { ($0.0, $0.1) }, "#1f77b4", true)], points: [], threshold: nil)
    out += panel(
      top: 60 + panelHeight + 50,
      label: "audit relative error (green: passed, grey: below rounding noise, red: failed)",
      maxX: maxUpdate, series: [],
      points: audits.map { audit in
        (
          audit.update, audit.relativeError,
          !audit.passed ? "#d62728" : (audit.conclusive ? "#2ca02c" : "#999999")
        )
      },
      threshold: tolerance)
    out +=
      "<text x=\"\(left + (width - left - right) / 2)\" y=\"\(Int(height) - 10)\" text-anchor=\"middle\">updates applied</text>\n"
    return out + "</svg>\n"
  }

  private func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
  }

  /// One panel with a log10 y axis spanning the data's decades.
  private func panel(
    top: Double, label: String, maxX: Double, series: [([(Double, Double)], String, Bool)],
    points: [(Double, Double, String)], threshold: Double?
  ) -> String {
    let plotWidth = width - left - right
    let values =
      series.flatMap { $0.0.map(\.1) } + points.map(\.1) + (threshold.map { [$0] } ?? [])
    let positive = values.filter { $0 > 0 && $0.isFinite }
    let low = floor(log10(positive.min() ?? 1e-12))
    let high = max(low + 1, ceil(log10(positive.max() ?? 1)))
    func x(_ value: Double) -> Double { left + plotWidth * value / maxX }
    func y(_ value: Double) -> Double {
      let clamped = max(value, pow(10, low))
      return top + panelHeight * (1 - (log10(clamped) - low) / (high - low))
    }
    var out =
      "<g>\n<text x=\"\(left)\" y=\"\(top - 6)\" font-weight=\"bold\">\(escape(label))</text>\n"
    out +=
      "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(panelHeight)\" fill=\"none\" stroke=\"#444\"/>\n"
    let step = max(1, Int((high - low) / 8))
    for decade in stride(from: Int(low), through: Int(high), by: step) {
      let yy = y(pow(10, Double(decade)))
      out +=
        "<line x1=\"\(left)\" y1=\"\(yy)\" x2=\"\(left + plotWidth)\" y2=\"\(yy)\" stroke=\"#ddd\"/>\n"
      out += "<text x=\"\(left - 6)\" y=\"\(yy + 4)\" text-anchor=\"end\">1e\(decade)</text>\n"
    }
    for tick in 0...4 {
      let value = maxX * Double(tick) / 4
      out +=
        "<text x=\"\(x(value))\" y=\"\(top + panelHeight + 16)\" text-anchor=\"middle\">\(Int(value))</text>\n"
    }
    for (data, color, _) in series where !data.isEmpty {
      // A diverged run's infinite or NaN losses have no place on a log axis.
      let path = data.filter { $0.1.isFinite }.map { "\(x($0.0)),\(y($0.1))" }.joined(
        separator: " ")
      out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
    }
    for (px, py, color) in points {
      out += "<circle cx=\"\(x(px))\" cy=\"\(y(py))\" r=\"2.5\" fill=\"\(color)\"/>\n"
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
