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
///
/// Laid out for memory: rows are numbered in creation order; keys, values and
/// state live in pages of `rowsPerPage` rows (so growth never copies a big
/// array), and an open-addressing index (linear probing, load at most 0.8,
/// 4-byte row numbers, grown by half) maps a key to its row: 5 to 7.5 bytes a
/// row. So a table holds (`bytesAllocated`) about 1.02–1.2 times its `rowBytes`
/// for FTRL or AdaGrad rows (a million keys: 1.17 at width 1 with FTRL, 1.04 at
/// width 9 with AdaGrad), up to 1.4 for SGD's 16-byte rows of width 1, plus at
/// most a page per array. Nothing is sized by the key space.
public struct KeyedTable: Sendable {
  /// Values per row.
  public let width: Int
  /// The update rule.
  public let optimizer: SparseOptimizerSettings
  /// How untouched rows start.
  public let initialization: RowInitialization

  /// Rows per page of keys, values and state.
  public static let rowsPerPage = 4096

  /// The index: per slot 0 (empty) or a row number + 1.
  private var slots: [UInt32] = []
  /// Pages of keys by row.
  private var keyPages: [[UInt64]] = []
  /// Pages of values by row (`width` per row).
  private var valuePages: [[Double]] = []
  /// Pages of optimizer state by row (`stateWidth` per row).
  private var statePages: [[Double]] = []
  /// Rows touched so far.
  public private(set) var count = 0

  /// An empty table.
  public init(width: Int, optimizer: SparseOptimizerSettings, initialization: RowInitialization) {
    precondition(width >= 1, "a row holds at least one value")
    self.width = width
    self.optimizer = optimizer
    self.initialization = initialization
  }

  /// Optimizer state values per row.
  public var stateWidth: Int { width * optimizer.stateValuesPerWeight }

  /// The bytes the touched rows hold: per row its key, values and state.
  public var rowBytes: Int { count * (8 + 8 * width + 8 * stateWidth) }

  /// The bytes of element storage the table holds (the capacity of its index,
  /// page lists and pages, used or not; not the arrays' headers or the
  /// allocator's own overhead): what a server's memory grows by, to compare with
  /// `rowBytes`.
  public var bytesAllocated: Int {
    var bytes = slots.capacity * 4
    bytes += 8 * (keyPages.capacity + valuePages.capacity + statePages.capacity)
    for page in keyPages { bytes += 8 * page.capacity }
    for page in valuePages { bytes += 8 * page.capacity }
    for page in statePages { bytes += 8 * page.capacity }
    return bytes
  }

  /// Whether `key` has a row (has been applied or restored).
  public func contains(_ key: UInt64) -> Bool { row(of: key) != nil }

  /// Appends the rows of `requested` (its initial row for an untouched key) to `output`.
  public func read(_ requested: some Collection<UInt64>, into output: inout [Double]) {
    output.reserveCapacity(output.count + requested.count * width)
    for key in requested {
      if let row = row(of: key) {
        let start = (row % Self.rowsPerPage) * width
        output.append(contentsOf: valuePages[row / Self.rowsPerPage][start..<(start + width)])
      } else {
        Self.appendInitialRow(
          of: key, width: width, initialization: initialization, to: &output)
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
      let page = row / Self.rowsPerPage
      let offset = (row % Self.rowsPerPage) * width
      for column in 0..<width {
        update(page: page, offset + column, gradient: gradient.next()!)
      }
    }
  }

  /// Every touched row in key order, for checkpoints: key, values, state.
  public func forEachRowInKeyOrder(
    _ body: (UInt64, ArraySlice<Double>, ArraySlice<Double>) -> Void
  ) {
    let stateWidth = self.stateWidth
    var keys: [UInt64] = []
    keys.reserveCapacity(count)
    for page in keyPages { keys.append(contentsOf: page) }
    keys.sort()
    for key in keys {
      let row = row(of: key)!
      let page = row / Self.rowsPerPage
      let slot = row % Self.rowsPerPage
      body(
        key, valuePages[page][(slot * width)..<((slot + 1) * width)],
        statePages.isEmpty
          ? [] : statePages[page][(slot * stateWidth)..<((slot + 1) * stateWidth)])
    }
  }

  /// Restores a row read from a checkpoint; the key must not be in the table.
  public mutating func restore(key: UInt64, values rowValues: [Double], state rowState: [Double]) {
    precondition(row(of: key) == nil, "a row is restored once")
    precondition(rowValues.count == width && rowState.count == stateWidth, "row shape")
    insert(key) { values, state in
      values.append(contentsOf: rowValues)
      state.append(contentsOf: rowState)
    }
  }

  // MARK: The index

  /// The index's slot to start probing for `key` at: a mix of the key unlike
  /// `KeyOwnership`'s (a shard's keys share the top bits of that one, so it
  /// would crowd them into a corner of the index), reduced by multiply-shift.
  private func firstSlot(of key: UInt64) -> Int {
    var z = key ^ 0x243F_6A88_85A3_08D3
    z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
    z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
    z ^= z >> 33
    return Int(z.multipliedFullWidth(by: UInt64(slots.count)).high)
  }

  /// The key of row `row`.
  private func key(ofRow row: Int) -> UInt64 {
    keyPages[row / Self.rowsPerPage][row % Self.rowsPerPage]
  }

  /// The row of `key`, nil when it has none.
  private func row(of key: UInt64) -> Int? {
    guard !slots.isEmpty else { return nil }
    var slot = firstSlot(of: key)
    while true {
      let entry = slots[slot]
      if entry == 0 { return nil }
      let row = Int(entry - 1)
      if self.key(ofRow: row) == key { return row }
      slot += 1
      if slot == slots.count { slot = 0 }
    }
  }

  /// Probes made to find every row, divided by the rows (1 when no key
  /// collides): for tests of the index's spread.
  var meanProbeLength: Double {
    guard count > 0 else { return 0 }
    var probes = 0
    for row in 0..<count {
      var slot = firstSlot(of: key(ofRow: row))
      probes += 1
      while slots[slot] != UInt32(row + 1) {
        slot += 1
        if slot == slots.count { slot = 0 }
        probes += 1
      }
    }
    return Double(probes) / Double(count)
  }

  /// Puts row `row` (whose key is in its page) in the index, which has room.
  private mutating func index(row: Int) {
    var slot = firstSlot(of: key(ofRow: row))
    while slots[slot] != 0 {
      slot += 1
      if slot == slots.count { slot = 0 }
    }
    slots[slot] = UInt32(row + 1)
  }

  /// A new row for `key` (not in the table): its key appended to the pages, its
  /// values and state by `fill` (which appends exactly one row to each), and
  /// the index grown by half when it would be more than 0.8 full.
  private mutating func insert(_ key: UInt64, fill: (inout [Double], inout [Double]) -> Void) {
    precondition(count < Int(UInt32.max) - 1, "a keyed table holds fewer than 2^32 - 1 rows")
    let row = count
    if row % Self.rowsPerPage == 0 {
      keyPages.append([])
      valuePages.append([])
      if stateWidth > 0 { statePages.append([]) }
    }
    let page = row / Self.rowsPerPage
    Self.makeRoom(for: 1, in: &keyPages[page])
    keyPages[page].append(key)
    Self.makeRoom(for: width, in: &valuePages[page])
    if stateWidth > 0 {
      Self.makeRoom(for: stateWidth, in: &statePages[page])
      fill(&valuePages[page], &statePages[page])
    } else {
      var none: [Double] = []
      fill(&valuePages[page], &none)
      precondition(none.isEmpty, "no state without an optimizer state")
    }
    count += 1
    if 5 * count > 4 * slots.count {
      slots = [UInt32](repeating: 0, count: max(16, slots.count + slots.count / 2))
      for existing in 0..<count { index(row: existing) }
    } else {
      index(row: row)
    }
  }

  /// Grows `page` so `extra` more elements fit: doubling, but never past a full
  /// page, so a page's spare room is at most what it holds.
  private static func makeRoom<Element>(for rowElements: Int, in page: inout [Element]) {
    let needed = page.count + rowElements
    guard needed > page.capacity else { return }
    page.reserveCapacity(
      min(max(needed, 2 * page.capacity, 16 * rowElements), rowsPerPage * rowElements))
  }

  private mutating func rowIndex(creating key: UInt64) -> Int {
    if let row = row(of: key) { return row }
    let optimizer = self.optimizer
    let width = self.width
    let initialization = self.initialization
    insert(key) { values, state in
      Self.appendInitialRow(of: key, width: width, initialization: initialization, to: &values)
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
    }
    return count - 1
  }

  /// Applies gradient `g` to value `position` of page `page` (the row's state
  /// is at the same place in its state page, two values per weight for FTRL).
  private mutating func update(page: Int, _ position: Int, gradient g: Double) {
    switch optimizer.kind {
    case .sgd:
      valuePages[page][position] -= optimizer.learningRate * g
    case .adagrad:
      statePages[page][position] += g * g
      valuePages[page][position] -=
        optimizer.learningRate * g / statePages[page][position].squareRoot()
    case .ftrl:
      let alpha = optimizer.learningRate
      let n = statePages[page][2 * position + 1]
      let newN = n + g * g
      let sigma = (newN.squareRoot() - n.squareRoot()) / alpha
      let z = statePages[page][2 * position] + g - sigma * valuePages[page][position]
      statePages[page][2 * position] = z
      statePages[page][2 * position + 1] = newN
      valuePages[page][position] =
        abs(z) <= optimizer.l1
        ? 0
        : -(z - (z > 0 ? optimizer.l1 : -optimizer.l1))
          / ((optimizer.beta + newN.squareRoot()) / alpha + optimizer.l2)
    }
  }

  /// Appends the initial row of `key` (`width` values by `initialization`) to `output`.
  private static func appendInitialRow(
    of key: UInt64, width: Int, initialization: RowInitialization, to output: inout [Double]
  ) {
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
