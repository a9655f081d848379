#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How the learning rate changes with the number of updates applied.
public enum LearningRateSchedule: Equatable, Sendable, CustomStringConvertible {
  /// The base rate throughout.
  case constant
  /// The base rate times `factor` every `every` updates: lr · factor^⌊t / every⌋.
  case step(every: UInt64, factor: Double)
  /// Cosine decay from the base rate to `minimum` over `total` updates, then `minimum`.
  case cosine(total: UInt64, minimum: Double)

  /// Parses `constant`, `step:EVERY:FACTOR` or `cosine:TOTAL[:MIN]`.
  public init(parsing text: String) throws(TrainingMathError) {
    let parts = text.split(separator: ":").map(String.init)
    switch parts.first {
    case "constant" where parts.count == 1:
      self = .constant
    case "step" where parts.count == 3:
      guard let every = UInt64(parts[1]), every >= 1, let factor = Double(parts[2]),
        factor.isFinite, factor > 0
      else { throw .invalidOptimizer("step schedule needs step:EVERY:FACTOR, got \"\(text)\"") }
      self = .step(every: every, factor: factor)
    case "cosine" where parts.count == 2 || parts.count == 3:
      guard let total = UInt64(parts[1]), total >= 1 else {
        throw .invalidOptimizer("cosine schedule needs cosine:TOTAL[:MIN], got \"\(text)\"")
      }
      let minimum = parts.count == 3 ? Double(parts[2]) : 0
      guard let minimum, minimum.isFinite, minimum >= 0 else {
        throw .invalidOptimizer("cosine minimum must be a finite number >= 0, got \"\(text)\"")
      }
      self = .cosine(total: total, minimum: minimum)
    default:
      throw .invalidOptimizer(
        "unknown schedule \"\(text)\" (constant, step:EVERY:FACTOR, cosine:TOTAL[:MIN])")
    }
  }

  /// The rate for update number `step` (0-based) from `base`. The constant
  /// schedule returns `base` itself, so plain SGD is bit-for-bit `w − lr·g`.
  public func rate(base: Double, step: UInt64) -> Double {
    switch self {
    case .constant:
      return base
    case .step(let every, let factor):
      return base * pow(factor, Double(step / every))
    case .cosine(let total, let minimum):
      let progress = Double(min(step, total)) / Double(total)
      return minimum + (base - minimum) * 0.5 * (1 + cos(Double.pi * progress))
    }
  }

  public var description: String {
    switch self {
    case .constant: "constant"
    case .step(let every, let factor): "step:\(every):\(factor)"
    case .cosine(let total, let minimum): "cosine:\(total):\(minimum)"
    }
  }
}

/// Which update rule the server applies.
public enum OptimizerKind: String, Equatable, Sendable, CaseIterable {
  /// `w ← w − lr·g`.
  case sgd
  /// Heavy-ball momentum: `v ← μ·v + g`, `w ← w − lr·v`.
  case momentum
  /// Adam (Kingma & Ba 2015) with bias correction.
  case adam
}

/// An optimizer's fixed settings.
public struct OptimizerSettings: Equatable, Sendable, CustomStringConvertible {
  /// The update rule.
  public var kind: OptimizerKind
  /// The base learning rate.
  public var learningRate: Double
  /// The schedule applied to the base rate.
  public var schedule: LearningRateSchedule
  /// Momentum coefficient μ (momentum), or β1 (Adam).
  public var beta1: Double
  /// Adam's β2.
  public var beta2: Double
  /// Adam's ε.
  public var epsilon: Double
  /// Weight decay L: sgd and momentum take the gradient `g + L·w` (L2
  /// regularization), Adam shrinks the weights by `lr·L·w` beside its step
  /// (decoupled, AdamW). 0, the default, leaves the update as it was, bit for bit.
  public var weightDecay: Double

  /// Settings; the learning rate must be finite and positive, the betas in
  /// [0, 1), the weight decay finite and >= 0.
  public init(
    kind: OptimizerKind = .sgd, learningRate: Double, schedule: LearningRateSchedule = .constant,
    beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0
  ) throws(TrainingMathError) {
    guard learningRate.isFinite, learningRate > 0 else { throw .invalidLearningRate(learningRate) }
    guard beta1 >= 0, beta1 < 1, beta2 >= 0, beta2 < 1, epsilon.isFinite, epsilon > 0 else {
      throw .invalidOptimizer("betas must be in [0, 1) and epsilon > 0")
    }
    guard weightDecay.isFinite, weightDecay >= 0 else {
      throw .invalidOptimizer("weight decay must be a finite number >= 0, got \(weightDecay)")
    }
    self.weightDecay = weightDecay
    self.kind = kind
    self.learningRate = learningRate
    self.schedule = schedule
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
  }

  public var description: String {
    let decay = weightDecay == 0 ? "" : ", weight decay \(weightDecay)"
    return switch kind {
    case .sgd: "sgd(lr \(learningRate), \(schedule)\(decay))"
    case .momentum: "momentum(lr \(learningRate), mu \(beta1), \(schedule)\(decay))"
    case .adam:
      "adam(lr \(learningRate), beta1 \(beta1), beta2 \(beta2), eps \(epsilon), \(schedule)\(decay))"
    }
  }
}

/// A server-side optimizer: settings plus the state it keeps between updates
/// (the step count, momentum's velocity, Adam's moments). The state is what a
/// checkpoint saves.
public struct Optimizer: Equatable, Sendable {
  /// The settings.
  public let settings: OptimizerSettings
  /// Updates applied so far.
  public private(set) var step: UInt64
  /// Momentum's velocity, or Adam's first moment (empty for SGD).
  public private(set) var firstMoment: [Double]
  /// Adam's second moment (empty otherwise).
  public private(set) var secondMoment: [Double]

  /// A fresh optimizer for `parameterCount` parameters.
  public init(settings: OptimizerSettings, parameterCount: Int) {
    self.settings = settings
    step = 0
    firstMoment = settings.kind == .sgd ? [] : [Double](repeating: 0, count: parameterCount)
    secondMoment = settings.kind == .adam ? [Double](repeating: 0, count: parameterCount) : []
  }

  /// An optimizer resumed with saved state; the moments must fit the kind.
  public init(
    settings: OptimizerSettings, step: UInt64, firstMoment: [Double], secondMoment: [Double],
    parameterCount: Int
  ) throws(TrainingMathError) {
    let expectedFirst = settings.kind == .sgd ? 0 : parameterCount
    let expectedSecond = settings.kind == .adam ? parameterCount : 0
    guard firstMoment.count == expectedFirst, secondMoment.count == expectedSecond else {
      throw .invalidOptimizer(
        "saved optimizer state does not fit \(settings.kind) with \(parameterCount) parameters")
    }
    self.settings = settings
    self.step = step
    self.firstMoment = firstMoment
    self.secondMoment = secondMoment
  }

  /// The learning rate the next update uses.
  public var currentLearningRate: Double {
    settings.schedule.rate(base: settings.learningRate, step: step)
  }

  /// Applies one update in place.
  public mutating func apply(gradient: [Double], to weights: inout [Double]) {
    precondition(gradient.count == weights.count, "gradient and weights differ in size")
    let step = UpdateStep(self)
    gradient.withUnsafeBufferPointer { g in
      weights.withUnsafeMutableBufferPointer { w in
        withMoments { m, v in step.apply(g, to: w, moments: m, v) }
      }
    }
    self.step += 1
  }

  /// The moments' storage, writable; SGD's empty arrays are not touched (even
  /// asking for an empty array's storage checks it is unique, on every update).
  private mutating func withMoments(
    _ body: (UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> Void
  ) {
    let none = UnsafeMutableBufferPointer<Double>(start: nil, count: 0)
    switch settings.kind {
    case .sgd: body(none, none)
    case .momentum: firstMoment.withUnsafeMutableBufferPointer { body($0, none) }
    case .adam:
      firstMoment.withUnsafeMutableBufferPointer { m in
        secondMoment.withUnsafeMutableBufferPointer { v in body(m, v) }
      }
    }
  }

  /// Applies one update in place from a gradient read where it was received
  /// (in several frames, say), part by part, without copying it first; its
  /// parts must cover the weights exactly once.
  public mutating func apply(gradient: BorrowedValues, to weights: inout [Double]) {
    apply(to: &weights) { part in gradient.forEachPart(part) }
  }

  /// Applies one update in place whose gradient comes in parts: `parts` hands
  /// each part's first flat index and values to its argument, and together they
  /// must cover the weights exactly once.
  mutating func apply(
    to weights: inout [Double],
    gradientParts parts: ((_ offset: Int, _ values: UnsafeBufferPointer<Double>) -> Void) -> Void
  ) {
    var covered = 0
    weights.withUnsafeMutableBufferPointer { w in
      update { runs in
        parts { offset, g in
          precondition(offset >= 0 && offset + g.count <= w.count, "gradient part out of range")
          covered += g.count
          runs.apply(at: offset, g, to: UnsafeMutableBufferPointer(rebasing: w[offset...]))
        }
      }
    }
    precondition(covered == weights.count, "gradient parts do not cover the weights")
  }

  /// One update whose weights the caller keeps in runs of its own (of Double
  /// or Float, say): `body` applies it to each run with the `UpdateRuns` it
  /// is handed; together the runs must cover the parameters once.
  mutating func update(_ body: (UpdateRuns) -> Void) {
    let step = UpdateStep(self)
    withMoments { m, v in body(UpdateRuns(step: step, m: m, v: v)) }
    self.step += 1
  }
}

/// One update applied run by run: a run of the gradient at a flat offset, to
/// weights of either floating-point type, with the moments at that offset.
struct UpdateRuns {
  fileprivate let step: UpdateStep
  fileprivate let m: UnsafeMutableBufferPointer<Double>
  fileprivate let v: UnsafeMutableBufferPointer<Double>

  /// Updates `w`'s first `g.count` weights, flat elements `offset...`, by `g`.
  @inline(__always)
  func apply<W: BinaryFloatingPoint>(
    at offset: Int, _ g: UnsafeBufferPointer<Double>, to w: UnsafeMutableBufferPointer<W>
  ) {
    // The run's own slices, indexed from 0 like `g`: the loops vectorize.
    let range = offset..<(offset + g.count)
    step.apply(
      g, to: UnsafeMutableBufferPointer(rebasing: w[0..<g.count]),
      moments: m.isEmpty ? m : UnsafeMutableBufferPointer(rebasing: m[range]),
      v.isEmpty ? v : UnsafeMutableBufferPointer(rebasing: v[range]))
  }
}

/// One update's constants, and the update of a run of weights: the one loop
/// behind both ways of applying a gradient.
private struct UpdateStep {
  let kind: OptimizerKind
  let rate: Double
  let beta1: Double
  let beta2: Double
  let epsilon: Double
  /// The weight decay L (0: none).
  let weightDecay: Double
  /// Adam's bias corrections (1 otherwise: two `pow` calls are not worth
  /// paying for SGD on a tiny model, where an update is a few nanoseconds).
  let correction1: Double
  let correction2: Double

  init(_ optimizer: Optimizer) {
    let settings = optimizer.settings
    kind = settings.kind
    rate = optimizer.currentLearningRate
    (beta1, beta2, epsilon) = (settings.beta1, settings.beta2, settings.epsilon)
    weightDecay = settings.weightDecay
    if kind == .adam {
      let t = Double(optimizer.step + 1)
      (correction1, correction2) = (1 - pow(beta1, t), 1 - pow(beta2, t))
    } else {
      (correction1, correction2) = (1, 1)
    }
  }

  /// Updates `w` by `g`, with momentum's velocity or Adam's moments in `m`
  /// and `v` (empty when the kind keeps none), all indexed alike. The update
  /// is computed in Float64 and rounded once into `W`.
  @inline(__always)
  func apply<W: BinaryFloatingPoint>(
    _ g: UnsafeBufferPointer<Double>, to w: UnsafeMutableBufferPointer<W>,
    moments m: UnsafeMutableBufferPointer<Double>, _ v: UnsafeMutableBufferPointer<Double>
  ) {
    // Without decay, the loops of old: a decay of 0 changes no bit and costs nothing.
    guard weightDecay != 0 else {
      apply(g, to: w, moments: m, v, decay: 0, decayed: false)
      return
    }
    apply(g, to: w, moments: m, v, decay: weightDecay, decayed: true)
  }

  /// The update, with `decay` applied only when `decayed` (a constant in each
  /// inlined copy, so the loops without decay are exactly those of old).
  @inline(__always)
  private func apply<W: BinaryFloatingPoint>(
    _ g: UnsafeBufferPointer<Double>, to w: UnsafeMutableBufferPointer<W>,
    moments m: UnsafeMutableBufferPointer<Double>, _ v: UnsafeMutableBufferPointer<Double>,
    decay: Double, decayed: Bool
  ) {
    switch kind {
    case .sgd:
      for index in g.indices {
        let weight = Double(w[index])
        let gradient = decayed ? g[index] + decay * weight : g[index]
        w[index] = W(weight - rate * gradient)
      }
    case .momentum:
      for index in g.indices {
        let weight = Double(w[index])
        let gradient = decayed ? g[index] + decay * weight : g[index]
        m[index] = beta1 * m[index] + gradient
        w[index] = W(weight - rate * m[index])
      }
    case .adam:
      for index in g.indices {
        m[index] = beta1 * m[index] + (1 - beta1) * g[index]
        v[index] = beta2 * v[index] + (1 - beta2) * g[index] * g[index]
        let mHat = m[index] / correction1
        let vHat = v[index] / correction2
        // AdamW: the decay shrinks the weight directly, outside the moments.
        let weight = Double(w[index])
        let decayedWeight = decayed ? weight - rate * decay * weight : weight
        w[index] = W(decayedWeight - rate * mHat / (vHat.squareRoot() + epsilon))
      }
    }
  }
}

extension Optimizer {
  /// Plain SGD with a constant `learningRate` (for one parameter vector of any size).
  public init(learningRate: Double) throws(TrainingMathError) {
    self.init(
      settings: try OptimizerSettings(learningRate: learningRate), parameterCount: 0)
  }

  /// The base learning rate.
  public var learningRate: Double { settings.learningRate }
}
