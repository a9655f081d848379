#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How a row not yet touched starts.
public enum RowInitialization: Equatable, Hashable, Sendable {
  /// Every value 0.
  case zero
  /// Value 0 is 0; values 1... (a factorization machine's factors) are drawn
  /// N(0, scale²) from a generator seeded by the key and `seed`, so every
  /// server and every replay agrees on a row's start without storing it.
  case seededFactors(seed: UInt64, scale: Double)
}

/// A table of rows keyed by `UInt64`, each `width` values plus its optimizer's
/// state, created when a push first touches them: memory grows with the rows
/// touched, not with the key space. A read of an untouched key answers its
/// initial row and creates nothing. Rows are applied with the table's optimizer.
public struct KeyedTable: Sendable {
  /// Values per row.
  public let width: Int
  /// The update rule.
  public let optimizer: SparseOptimizerSettings
  /// How untouched rows start.
  public let initialization: RowInitialization

  /// Row index of each touched key.
  private var index: [UInt64: Int] = [:]
  /// Keys in the order their rows were created.
  private var keys: [UInt64] = []
  /// `count × width` values.
  private var values: [Double] = []
  /// `count × width × optimizer.stateValuesPerWeight` state values.
  private var state: [Double] = []

  /// An empty table.
  public init(width: Int, optimizer: SparseOptimizerSettings, initialization: RowInitialization) {
    precondition(width >= 1, "a row holds at least one value")
    self.width = width
    self.optimizer = optimizer
    self.initialization = initialization
  }

  /// Rows touched so far.
  public var count: Int { keys.count }

  /// Optimizer state values per row.
  public var stateWidth: Int { width * optimizer.stateValuesPerWeight }

  /// The bytes the touched rows hold: per row its key, values and state.
  public var rowBytes: Int { count * (8 + 8 * width + 8 * stateWidth) }

  /// Appends the rows of `requested` (its initial row for an untouched key) to `output`.
  public func read(_ requested: some Collection<UInt64>, into output: inout [Double]) {
    output.reserveCapacity(output.count + requested.count * width)
    for key in requested {
      if let row = index[key] {
        output.append(contentsOf: values[(row * width)..<((row + 1) * width)])
      } else {
        appendInitialRow(of: key, to: &output)
      }
    }
  }

  /// Applies `gradients` (`width` values per key, aligned with `updated`) with
  /// the optimizer, creating the rows not yet touched. The caller has checked
  /// that the values are finite.
  public mutating func apply(
    _ updated: some Collection<UInt64>, gradients: some Collection<Double>
  ) {
    precondition(gradients.count == updated.count * width, "one gradient row per key")
    var gradient = gradients.makeIterator()
    for key in updated {
      let row = rowIndex(creating: key)
      for column in 0..<width {
        update(row * width + column, gradient: gradient.next()!)
      }
    }
  }

  /// Every touched row in key order, for checkpoints: key, values, state.
  public func forEachRowInKeyOrder(
    _ body: (UInt64, ArraySlice<Double>, ArraySlice<Double>) -> Void
  ) {
    let stateWidth = self.stateWidth
    for key in keys.sorted() {
      let row = index[key]!
      body(
        key, values[(row * width)..<((row + 1) * width)],
        state[(row * stateWidth)..<((row + 1) * stateWidth)])
    }
  }

  /// Restores a row read from a checkpoint; the key must not be in the table.
  public mutating func restore(key: UInt64, values rowValues: [Double], state rowState: [Double]) {
    precondition(index[key] == nil, "a row is restored once")
    precondition(rowValues.count == width && rowState.count == stateWidth, "row shape")
    index[key] = keys.count
    keys.append(key)
    values.append(contentsOf: rowValues)
    state.append(contentsOf: rowState)
  }

  private mutating func rowIndex(creating key: UInt64) -> Int {
    if let row = index[key] { return row }
    let row = keys.count
    index[key] = row
    keys.append(key)
    appendInitialRow(of: key, to: &values)
    let start = values.count - width
    switch optimizer.kind {
    case .sgd: break
    case .adagrad:
      state.append(contentsOf: repeatElement(optimizer.initialAccumulator, count: width))
    case .ftrl:
      // z such that the FTRL weight is the initial value: w = −(z − sgn(z)·λ1) / ((β + √n)/α + λ2) with n = 0.
      for column in 0..<width {
        let weight = values[start + column]
        let z =
          weight == 0
          ? 0
          : -weight * (optimizer.beta / optimizer.learningRate + optimizer.l2)
            - (weight > 0 ? optimizer.l1 : -optimizer.l1)
        state.append(z)
        state.append(0)
      }
    }
    return row
  }

  private mutating func update(_ position: Int, gradient g: Double) {
    switch optimizer.kind {
    case .sgd:
      values[position] -= optimizer.learningRate * g
    case .adagrad:
      state[position] += g * g
      values[position] -= optimizer.learningRate * g / state[position].squareRoot()
    case .ftrl:
      let alpha = optimizer.learningRate
      let n = state[2 * position + 1]
      let newN = n + g * g
      let sigma = (newN.squareRoot() - n.squareRoot()) / alpha
      let z = state[2 * position] + g - sigma * values[position]
      state[2 * position] = z
      state[2 * position + 1] = newN
      values[position] =
        abs(z) <= optimizer.l1
        ? 0
        : -(z - (z > 0 ? optimizer.l1 : -optimizer.l1))
          / ((optimizer.beta + newN.squareRoot()) / alpha + optimizer.l2)
    }
  }

  private func appendInitialRow(of key: UInt64, to output: inout [Double]) {
    switch initialization {
    case .zero:
      output.append(contentsOf: repeatElement(0, count: width))
    case .seededFactors(let seed, let scale):
      output.append(0)
      var generator = SplitMix64(seed: seed ^ (key &* 0x9E37_79B9_7F4A_7C15))
      for _ in 1..<width { output.append(scale * generator.nextGaussian()) }
    }
  }
}
