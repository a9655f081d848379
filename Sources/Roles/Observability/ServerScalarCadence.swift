import WireProtocol

/// When the server writes its TensorBoard scalars, and what: throughput,
/// staleness and learning rate every `periodMilliseconds` of the loop's clock
/// while the version moves, and once more at the end. A pure state machine:
/// the loop hands it the time, the server's counters and the staleness samples,
/// and writes what it returns.
public struct ServerScalarCadence: Sendable {
  /// The default period: one point a second.
  public static let defaultPeriodMilliseconds: UInt64 = 1000
  /// Milliseconds between points.
  public let periodMilliseconds: UInt64
  private var last: (now: UInt64, version: UInt64, samples: UInt64)?
  private var staleness: (count: UInt64, sum: UInt64, maximum: UInt64) = (0, 0, 0)

  /// A cadence of one point every `periodMilliseconds`.
  public init(periodMilliseconds: UInt64 = defaultPeriodMilliseconds) {
    self.periodMilliseconds = periodMilliseconds
  }

  /// Starts the first interval at `now` with the server's `version` and `samples` applied.
  public mutating func start(now: UInt64, version: UInt64, samples: UInt64) {
    last = (now, version, samples)
  }

  /// Takes staleness samples of gradients applied since the last call.
  public mutating func observe(staleness samples: [UInt64]) {
    for sample in samples {
      staleness.count += 1
      staleness.sum &+= sample
      staleness.maximum = max(staleness.maximum, sample)
    }
  }

  /// The point due at `now`, with its step (the version), or nil: a point is
  /// due when a period has passed since the last one (or, with `final`, at
  /// once) and the version has moved since. Samples per second are the rows
  /// applied since the last point over the time since it; the staleness figures
  /// cover the gradients applied since (left out when none were recorded).
  public mutating func due(
    now: UInt64, version: UInt64, samples: UInt64, learningRate: Double, final: Bool = false
  ) -> (step: UInt64, scalars: [TensorBoardEvent.Scalar])? {
    guard let last else {
      start(now: now, version: version, samples: samples)
      return nil
    }
    guard version != last.version, final || now &- last.now >= periodMilliseconds else {
      return nil
    }
    let seconds = Double(max(1, now &- last.now)) / 1000
    let rows = samples >= last.samples ? samples - last.samples : samples
    var scalars: [TensorBoardEvent.Scalar] = [
      .init(tag: TensorBoardScalars.samplesPerSecond, value: Float(Double(rows) / seconds))
    ]
    if staleness.count > 0 {
      scalars.append(
        .init(
          tag: TensorBoardScalars.stalenessMean,
          value: Float(Double(staleness.sum) / Double(staleness.count))))
      scalars.append(.init(tag: TensorBoardScalars.stalenessMax, value: Float(staleness.maximum)))
    }
    scalars.append(.init(tag: TensorBoardScalars.learningRate, value: Float(learningRate)))
    self.last = (now, version, samples)
    staleness = (0, 0, 0)
    return (version, scalars)
  }
}
