import Foundation
import Roles
import TrainingMath

/// How well weights fit the data, measured on the data itself: the mean loss, the
/// largest |e − label| over every row, and the prediction for a few rows beside
/// their labels. Nothing here is claimed without being computed (a diverged run
/// shows infinite errors, not right-looking signs).
struct DataFit {
  /// One row with what the model predicts for it.
  struct Row {
    var index: Int
    var x: Double
    var label: Double
    var prediction: Double
  }

  /// Rows in the data.
  var rowCount: Int
  /// Mean loss over every row.
  var loss: Double
  /// The largest |e − label| over every row (NaN when a prediction is NaN).
  var largestError: Double
  /// Up to `shownRows` rows spread over the data: the first, the middle, the last.
  var shown: [Row]

  static let shownRows = 3

  /// Rows classified right, for a classifier (its prediction is the class with
  /// the highest score; `largestError` then counts 1 for a wrong class).
  var correct: Int?

  init(model: some DifferentiableModel, weights: [Double], dataset: Dataset) {
    let objective = Objective(model: model)
    let evaluation = objective.evaluate(weights: weights, dataset: dataset)
    rowCount = dataset.count
    loss = evaluation.loss
    correct = evaluation.correct
    let predictions = model.predictions(weights: weights, dataset: dataset)
    var largest = 0.0
    for row in 0..<dataset.count {
      let error = abs(predictions[row] - dataset.labels[row])
      if error.isNaN {
        largest = .nan
        break
      }
      largest = max(largest, error)
    }
    largestError = largest
    let count = dataset.count
    let picked =
      count <= Self.shownRows
      ? Array(0..<count) : Array(Set([0, count / 2, count - 1])).sorted()
    shown = picked.map { index in
      Row(
        index: index, x: dataset.features[index * dataset.featureCount],
        label: dataset.labels[index], prediction: predictions[index])
    }
  }

  /// The `loss` and `predictions` lines of the text summary.
  var textLines: [String] {
    if correct != nil {
      // A classifier: classes, not distances.
      return [
        "  loss        \(loss) (mean cross-entropy over \(rowCount) rows)",
        "  predictions "
          + shown.map { "row \($0.index): class \(Int($0.prediction)) (label \(Int($0.label)))" }
          .joined(separator: "; "),
      ]
    }
    return [
      "  loss        \(loss) (mean over \(rowCount) rows), largest |e - label| \(largestError)",
      "  predictions "
        + shown.map { "row \($0.index): x \($0.x) -> e \($0.prediction) (label \($0.label))" }
        .joined(separator: "; "),
    ]
  }

  /// The JSON members `loss`, `largest_error` and `predictions` (no braces).
  var jsonMembers: String {
    let rows = shown.map {
      "{\"row\":\($0.index),\"x\":\(JSON.number($0.x)),\"label\":\(JSON.number($0.label)),"
        + "\"prediction\":\(JSON.number($0.prediction))}"
    }
    return "\"loss\":\(JSON.number(loss)),\"largest_error\":\(JSON.number(largestError)),"
      + "\"predictions\":[\(rows.joined(separator: ","))]"
  }
}

/// Divergence as `pstrain train` detects it on the loss over the whole data: the loss
/// became NaN or infinite, or grew a millionfold from where the run started.
struct DivergenceCheck {
  /// Growth of the loss over its starting value that counts as divergence.
  static let growthLimit = 1e6

  /// The loss at the initial weights.
  var initialLoss: Double
  /// What growth is measured from: the initial loss, or the loss of predicting 0 for
  /// every row if that is larger, so that a start that already fits (a loss near 0)
  /// does not make rounding noise read as a millionfold growth.
  private var reference: Double

  /// A check against `initialLoss`, the loss at the initial weights over
  /// `dataset`; `regression` says whether predicting 0 has a loss to compare with.
  init(initialLoss: Double, dataset: Dataset, regression: Bool = true) {
    self.initialLoss = initialLoss
    var zeroPredictionLoss = 0.0
    if regression {
      for label in dataset.labels {
        zeroPredictionLoss += SquaredErrorLoss.value(prediction: 0, label: label)
      }
      zeroPredictionLoss /= Double(max(1, dataset.count))
    }
    reference = max(initialLoss, zeroPredictionLoss)
  }

  /// What went wrong with `loss`, worded for "the loss became ...", or nil if nothing.
  func problem(loss: Double) -> String? {
    if loss.isNaN { return "the loss became NaN" }
    if loss.isInfinite { return "the loss became infinite" }
    if reference > 0, loss > reference * Self.growthLimit {
      return
        "the loss grew from \(short(initialLoss)) to \(short(loss)), by a factor of \(short(loss / initialLoss))"
    }
    return nil
  }

  private func short(_ value: Double) -> String { String(format: "%.3g", value) }

  /// A learning rate to try after `rate` diverged on a chain of `layers` layers over
  /// `dataset`, rounded down to one significant digit. A step of the chain's product
  /// p moves it by about lr·Σ_k(p/w_k)²·x², near lr·L·mean(x²) once |p| nears 1; half
  /// of that step is stable with room to spare, so 0.5/(L·mean(x²)) is suggested, or
  /// half the rate that diverged if that is lower.
  static func suggestedRate(after rate: Double, layers: Int, dataset: Dataset) -> Double {
    let meanSquare =
      dataset.features.reduce(0.0) { $0 + $1 * $1 } / Double(max(1, dataset.count))
    let stable = meanSquare > 0 ? 0.5 / (Double(layers) * meanSquare) : .infinity
    let wanted = min(rate / 2, stable)
    let decade = pow(10, floor(log10(wanted)))
    // The tiny factor keeps 0.0005 from reading as 4.999...e-4 and rounding to 0.0004.
    return floor(wanted / decade * (1 + 1e-9)) * decade
  }

  /// The one line that says the run diverged and what to try.
  static func line(
    version: UInt64, problem: String, rate: Double, layers: Int, dataset: Dataset
  ) -> String {
    let suggestion = suggestedRate(after: rate, layers: layers, dataset: dataset)
    return
      "training diverged at version \(version): \(problem); for a chain of \(layers) layer\(layers == 1 ? "" : "s") try --lr \(String(format: "%g", suggestion)) or lower"
  }
}

/// The first weights of a long list, saying how many there are when they are cut.
func weightsText(_ weights: [Double], showing limit: Int = 8) -> String {
  let shown = weights.prefix(limit).map { "\($0)" }.joined(separator: ", ")
  guard weights.count > limit else { return shown }
  return shown + ", ... (\(limit) of \(weights.count) weights shown; --json lists all)"
}

extension TrainCommand.AuditSummary {
  /// The tally of the coordinator's JSON audit lines, for when it gave no summary
  /// (it was stopped, or failed): what was audited is still known.
  init(countingAuditLines lines: [String]) {
    self.init(
      count: 0, failed: 0, inconclusive: 0, maximumRelativeError: 0, failedWorkers: [],
      failedChecks: FailedChecks(finiteDifferences: 0, replay: 0), confirmed: 0)
    var failing = Set<Int>()
    for line in lines {
      guard let audit = CoordinatorAuditLine(line), let passed = audit.passed,
        let conclusive = audit.conclusive, let worker = audit.worker
      else { continue }
      count += 1
      if !passed {
        failed += 1
        failing.insert(worker)
        let checks = audit.failedChecks ?? ["finite_differences"]
        if checks.contains("finite_differences") { failedChecks?.finiteDifferences += 1 }
        if checks.contains("replay") { failedChecks?.replay += 1 }
        if audit.confirmed == true { confirmed? += 1 }
      }
      if conclusive {
        maximumRelativeError = max(maximumRelativeError ?? 0, audit.maxRelativeError ?? 0)
      } else {
        inconclusive += 1
      }
    }
    failedWorkers = failing.sorted()
  }
}

/// One audit line of the coordinator's `--json` output (`AuditReport.json`), as `train`
/// reads it back for its summary and its plot; nil for any other line.
struct CoordinatorAuditLine: Decodable {
  var type: String
  var worker: Int?
  var appliedAt: Double?
  var rawMaxRelativeError: Double?
  var maxRelativeError: Double?
  var passed: Bool?
  var conclusive: Bool?
  var gradientMagnitude: Double?
  var detectableRelativeError: Double?
  var failedChecks: [String]?
  var confirmed: Bool?

  private enum CodingKeys: String, CodingKey {
    case type, worker, passed, conclusive, confirmed
    case failedChecks = "failed_checks"
    case appliedAt = "applied_at"
    case rawMaxRelativeError = "raw_max_relative_error"
    case maxRelativeError = "max_relative_error"
    case gradientMagnitude = "gradient_magnitude"
    case detectableRelativeError = "detectable_relative_error"
  }

  /// The audit on `line`, or nil when the line is not an audit.
  init?(_ line: String) {
    guard let audit = try? JSONDecoder().decode(Self.self, from: Data(line.utf8)),
      audit.type == "audit"
    else { return nil }
    self = audit
  }
}

/// The sampling figures of the coordinator's JSON summary line, as `train` reports them:
/// the audit budget, the probability it bought, what that implies, each worker's coverage,
/// and the warnings about workers gone unaudited.
struct CoordinatorSampling: Decodable {
  /// One worker's coverage (`AuditCoverage.json`).
  struct WorkerCoverage: Decodable {
    var worker: Int
    var pushes: Int
    var pushesWatched: Int
    var audits: Int
    var auditedRate: Double

    private enum CodingKeys: String, CodingKey {
      case worker, pushes, audits
      case pushesWatched = "pushes_watched"
      case auditedRate = "audited_rate"
    }

    /// The same object again.
    var json: String {
      "{\"worker\":\(worker),\"pushes\":\(pushes),\"pushes_watched\":\(pushesWatched),"
        + "\"audits\":\(audits),\"audited_rate\":\(JSON.number(auditedRate))}"
    }
  }

  var auditBudget: Double
  var auditProbability: Double
  var detectionPushes: Int?
  var coverage: [WorkerCoverage]
  var warnings: [String]
  var gradientSeconds: Double?
  var replaySeconds: Double?
  var finiteDifferenceSeconds: Double?
  var auditCPUSeconds: Double?

  private enum CodingKeys: String, CodingKey {
    case coverage, warnings
    case auditBudget = "audit_budget"
    case auditProbability = "audit_probability"
    case detectionPushes = "detection_pushes_999"
    case gradientSeconds = "gradient_seconds"
    case replaySeconds = "replay_seconds"
    case finiteDifferenceSeconds = "finite_difference_seconds"
    case auditCPUSeconds = "audit_cpu_seconds"
  }

  /// `"audit_budget":…,"audit_probability":…,"detection_pushes_999":…,"gradient_seconds":…,
  /// "replay_seconds":…,"finite_difference_seconds":…,"audit_cpu_seconds":…,"coverage":[…]`.
  var jsonMembers: String {
    "\"audit_budget\":\(JSON.number(auditBudget)),"
      + "\"audit_probability\":\(JSON.number(auditProbability)),"
      + "\"detection_pushes_999\":\(detectionPushes.map(String.init) ?? "null"),"
      + "\"gradient_seconds\":\(gradientSeconds.map(JSON.number) ?? "null"),"
      + "\"replay_seconds\":\(replaySeconds.map(JSON.number) ?? "null"),"
      + "\"finite_difference_seconds\":\(finiteDifferenceSeconds.map(JSON.number) ?? "null"),"
      + "\"audit_cpu_seconds\":\(auditCPUSeconds.map(JSON.number) ?? "null"),"
      + "\"coverage\":[\(coverage.map(\.json).joined(separator: ","))]"
  }

  /// The summary's lines: the budget and what it implies, then the workers' coverage.
  var textLines: [String] {
    let detection =
      detectionPushes.map {
        "; a worker faulty on every push is flagged within \($0) of its pushes with probability 0.999"
      } ?? ""
    var lines = [
      "  sampling    audit budget \(JSON.number(auditBudget * 100))%, each push sampled with probability \(String(format: "%.4g", auditProbability))\(detection)"
    ]
    if !coverage.isEmpty {
      lines.append(
        "  coverage    "
          + coverage.map {
            "worker \($0.worker) \($0.audits)/\($0.pushesWatched) (\(String(format: "%.2g", $0.auditedRate * 100))%)"
          }.joined(separator: ", "))
    }
    return lines
  }
}
