import Testing

@testable import TrainingMath

@Suite struct KeyedTableTests {
  private func row(_ table: KeyedTable, _ key: UInt64) -> [Double] {
    var output: [Double] = []
    table.read([key], into: &output)
    return output
  }

  @Test func sgdStepsByTheLearningRate() {
    var table = KeyedTable(
      width: 2, optimizer: SparseOptimizerSettings(kind: .sgd, learningRate: 0.1),
      initialization: .zero)
    table.apply([7], gradients: [2, -4])
    let first: [Double] = [0 - 0.1 * 2, 0 - 0.1 * -4]
    #expect(row(table, 7) == first)
    table.apply([7], gradients: [-1, 0.5])
    let second: [Double] = [first[0] - 0.1 * -1, first[1] - 0.1 * 0.5]
    #expect(row(table, 7) == second)
  }

  @Test func adagradDividesByTheRootOfTheSummedSquares() {
    var table = KeyedTable(
      width: 1,
      optimizer: SparseOptimizerSettings(kind: .adagrad, learningRate: 0.5, initialAccumulator: 0),
      initialization: .zero)
    table.apply([3], gradients: [2])
    // n = 4, w = −0.5·2/2.
    #expect(row(table, 3) == [-0.5])
    table.apply([3], gradients: [1])
    // n = 5, w = −0.5 − 0.5·1/√5.
    let expected: Double = -0.5 - 0.5 / (5.0).squareRoot()
    #expect(row(table, 3) == [expected])
  }

  @Test func ftrlFollowsTheProximalUpdate() {
    let settings = SparseOptimizerSettings(kind: .ftrl, learningRate: 0.1, l1: 0.2, l2: 0.5)
    var table = KeyedTable(width: 1, optimizer: settings, initialization: .zero)
    table.apply([9], gradients: [1])
    // n = 1, σ = 10, z = 1; w = −(1 − 0.2) / ((1 + 1)/0.1 + 0.5).
    let w1: Double = -(1 - 0.2) / ((1 + 1) / 0.1 + 0.5)
    #expect(row(table, 9) == [w1])
    table.apply([9], gradients: [-0.5])
    // n = 1.25, σ = (√1.25 − 1)/0.1, z = 1 − 0.5 − σ·w1.
    let root: Double = (1.25).squareRoot()
    let sigma: Double = (root - 1) / 0.1
    let z: Double = 1 + -0.5 - sigma * w1
    let w2: Double = -(z - 0.2) / ((1 + root) / 0.1 + 0.5)
    #expect(row(table, 9) == [w2])
    var saved: [(Double, Double)] = []
    table.forEachRowInKeyOrder { _, _, state in saved.append((state[0], state[1])) }
    #expect(saved.count == 1 && saved[0] == (z, 1.25))
  }

  @Test func ftrlL1HoldsSmallWeightsAtExactlyZero() {
    let settings = SparseOptimizerSettings(kind: .ftrl, learningRate: 0.05, l1: 1)
    var table = KeyedTable(width: 1, optimizer: settings, initialization: .zero)
    var generator = SplitMix64(seed: 5)
    for _ in 0..<200 {
      // Key 1's gradients are small and alternate, so |z| stays under λ1; key 2's push on.
      let small = 0.3 * (generator.nextUnit() - 0.5)
      table.apply([1, 2], gradients: [small, 0.4])
      #expect(row(table, 1)[0].bitPattern == 0)
    }
    #expect(row(table, 2)[0] < 0)
  }

  @Test func seededRowsStartWhereTheyAreReadUnderFTRL() {
    let settings = SparseOptimizerSettings(kind: .ftrl, learningRate: 0.1, l1: 0.01, l2: 0.1)
    var table = KeyedTable(
      width: 5, optimizer: settings, initialization: .seededFactors(seed: 42, scale: 0.01))
    let key: UInt64 = 123_456
    let initial = row(table, key)
    #expect(initial[0] == 0 && initial[1...].allSatisfy { $0 != 0 })
    #expect(row(table, key) == initial)
    table.apply([99], gradients: [1, 1, 1, 1, 1])
    #expect(row(table, key) == initial)
    // A zero gradient creates the row at its initial value: FTRL's z is set so.
    table.apply([key], gradients: [0, 0, 0, 0, 0])
    let created = row(table, key)
    #expect(created[0] == 0)
    for column in 1..<5 {
      #expect(abs(created[column] - initial[column]) <= 4 * initial[column].ulp)
    }
  }

  @Test func readsOfUntouchedKeysCreateNothing() {
    let table = KeyedTable(
      width: 3, optimizer: SparseOptimizerSettings(kind: .adagrad, learningRate: 0.1),
      initialization: .seededFactors(seed: 1, scale: 0.01))
    var output: [Double] = []
    table.read([0, 1 << 40, 12_345], into: &output)
    #expect(output.count == 9)
    #expect(table.count == 0 && table.bytesAllocated == 0 && table.rowBytes == 0)
    #expect(!table.contains(12_345))
  }

  @Test func checkpointRowsRestoreBitForBit() {
    for kind in SparseOptimizerKind.allCases {
      let settings = SparseOptimizerSettings(kind: kind, learningRate: 0.05, l1: 0.001, l2: 0.01)
      var table = KeyedTable(
        width: 3, optimizer: settings, initialization: .seededFactors(seed: 3, scale: 0.01))
      var generator = SplitMix64(seed: 11)
      for _ in 0..<50 {
        let keys = (0..<200).map { _ in generator.next() % 20_000 }
        let gradients = (0..<(3 * keys.count)).map { _ in generator.nextGaussian() }
        table.apply(keys, gradients: gradients)
      }
      var restored = KeyedTable(
        width: 3, optimizer: settings, initialization: .seededFactors(seed: 3, scale: 0.01))
      var previous: UInt64? = nil
      var dump: [(UInt64, [UInt64], [UInt64])] = []
      table.forEachRowInKeyOrder { key, values, state in
        #expect(previous.map { $0 < key } ?? true)
        previous = key
        restored.restore(key: key, values: Array(values), state: Array(state))
        dump.append((key, values.map(\.bitPattern), state.map(\.bitPattern)))
      }
      #expect(restored.count == table.count && dump.count == table.count)
      var again: [(UInt64, [UInt64], [UInt64])] = []
      restored.forEachRowInKeyOrder { key, values, state in
        again.append((key, values.map(\.bitPattern), state.map(\.bitPattern)))
      }
      #expect(again.elementsEqual(dump) { $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 })
      // And both go on alike.
      let keys: [UInt64] = [5, 19_999, 77_777]
      table.apply(keys, gradients: [Double](repeating: 0.25, count: 9))
      restored.apply(keys, gradients: [Double](repeating: 0.25, count: 9))
      var left: [Double] = []
      var right: [Double] = []
      table.read(keys, into: &left)
      restored.read(keys, into: &right)
      #expect(left.map(\.bitPattern) == right.map(\.bitPattern))
    }
  }

  /// A million random keys below 2^40, and `width` values per row.
  private func millionKeyTable(width: Int, kind: SparseOptimizerKind) -> KeyedTable {
    var table = KeyedTable(
      width: width, optimizer: SparseOptimizerSettings(kind: kind, learningRate: 0.1),
      initialization: .zero)
    var generator = SplitMix64(seed: 2026)
    let gradients = [Double](repeating: 0.5, count: 1000 * width)
    while table.count < 1_000_000 {
      let keys = (0..<min(1000, 1_000_000 - table.count)).map { _ in generator.next() >> 24 }
      table.apply(keys, gradients: Array(gradients[0..<(keys.count * width)]))
    }
    return table
  }

  @Test(arguments: [(1, SparseOptimizerKind.ftrl), (9, .adagrad), (1, .adagrad)])
  func aMillionKeysStayWithinTheMemoryTarget(width: Int, kind: SparseOptimizerKind) {
    let table = millionKeyTable(width: width, kind: kind)
    #expect(table.count == 1_000_000)
    let pageBytes = KeyedTable.rowsPerPage * (8 + 8 * width + 8 * table.stateWidth)
    #expect(Double(table.bytesAllocated) <= 1.3 * Double(table.rowBytes) + Double(pageBytes))
    #expect(table.meanProbeLength <= 3)
  }

  @Test func oneShardsKeysSpreadOverTheIndex() {
    // KeyOwnership's hash puts one shard's keys in a narrow band of its own
    // top bits; the index must not inherit that.
    let ownership = KeyOwnership(shards: 64)
    var table = KeyedTable(
      width: 1, optimizer: SparseOptimizerSettings(kind: .sgd, learningRate: 0.1),
      initialization: .zero)
    var key: UInt64 = 0
    while table.count < 20_000 {
      if ownership.owner(of: key) == 0 { table.apply([key], gradients: [1]) }
      key += 1
    }
    #expect(table.meanProbeLength <= 3)
  }
}
