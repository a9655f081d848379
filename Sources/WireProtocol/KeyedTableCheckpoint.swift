import TrainingMath

/// A sparse model's keyed table as a checkpoint keeps it: the model's wire name
/// and every touched row with its optimizer state, so a resumed server applies
/// the next push exactly as the stopped one would have.
public struct CheckpointedKeyedTable: Equatable, Sendable {
  /// The sparse model's wire name (`SparseModelSpec.wireName`); its row width is the table's.
  public var modelName: String
  /// The rows.
  public var table: KeyedTable

  /// A table of the model named `modelName`.
  public init(modelName: String, table: KeyedTable) {
    self.modelName = modelName
    self.table = table
  }

  /// Equal when the settings match and every row holds the same key, values and
  /// state, bit for bit (creation order aside: the checkpoint keeps key order).
  public static func == (lhs: Self, rhs: Self) -> Bool {
    lhs.modelName == rhs.modelName && lhs.table.hasTheSameRows(as: rhs.table)
  }
}

extension KeyedTable {
  /// Whether `other` has this table's width, optimizer and initialization and
  /// the same rows, bit for bit (for checkpoints and tests: the table itself is
  /// not `Equatable`).
  public func hasTheSameRows(as other: KeyedTable) -> Bool {
    guard width == other.width, optimizer == other.optimizer,
      initialization == other.initialization, count == other.count
    else { return false }
    var rows: [(UInt64, [UInt64], [UInt64])] = []
    rows.reserveCapacity(count)
    forEachRowInKeyOrder { key, values, state in
      rows.append((key, values.map(\.bitPattern), state.map(\.bitPattern)))
    }
    var index = 0
    var same = true
    other.forEachRowInKeyOrder { key, values, state in
      guard same else { return }
      let row = rows[index]
      same =
        row.0 == key && row.1.elementsEqual(values.lazy.map(\.bitPattern))
        && row.2.elementsEqual(state.lazy.map(\.bitPattern))
      index += 1
    }
    return same
  }
}

extension CheckpointedKeyedTable {
  /// `str8 model name`, `u32 width`, the optimizer (`u8 kind`: 0 sgd, 1 adagrad,
  /// 2 ftrl; `f64` learning rate, l1, l2, beta, initial accumulator), the
  /// initialization (`u8` 0 zero, or 1 then `u64 seed`, `f64 scale`), `u64 rows`,
  /// then each row in ascending key order: `u64 key`, width × `f64` values,
  /// width × state-values-per-weight × `f64` state.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(modelName, lengthAs: UInt8.self)
    sink.write(UInt32(table.width))
    let settings = table.optimizer
    sink.write(UInt8(SparseOptimizerKind.allCases.firstIndex(of: settings.kind)!))
    for value in [
      settings.learningRate, settings.l1, settings.l2, settings.beta, settings.initialAccumulator,
    ] {
      sink.write(value)
    }
    switch table.initialization {
    case .zero:
      sink.write(UInt8(0))
    case .seededFactors(let seed, let scale):
      sink.write(UInt8(1))
      sink.write(seed)
      sink.write(scale)
    }
    sink.write(UInt64(table.count))
    table.forEachRowInKeyOrder { key, values, state in
      sink.write(key)
      sink.write(float64Values: values)
      sink.write(float64Values: state)
    }
  }

  /// Reads a section `encode` wrote; every refusal names its field.
  static func decode(from reader: inout ByteReader) throws(DecodeError) -> CheckpointedKeyedTable {
    let modelName = try reader.readSparseModelName("keyed table model name")
    // readSparseModelName accepted it, so it parses.
    let spec = (try? SparseModelSpec(wireName: modelName)).flatMap { $0 }!
    let width = Int(try reader.read(UInt32.self, "keyed table width"))
    guard width == spec.rowWidth else {
      throw .outOfRange(
        field: "keyed table width", value: String(width),
        allowed: "\(spec.rowWidth), the row width of \(modelName)")
    }
    let kindIndex = Int(try reader.read(UInt8.self, "keyed table optimizer kind"))
    guard kindIndex < SparseOptimizerKind.allCases.count else {
      throw .outOfRange(
        field: "keyed table optimizer kind", value: String(kindIndex),
        allowed: "0 (sgd), 1 (adagrad) or 2 (ftrl)")
    }
    let learningRate = try reader.readFinite("keyed table learning rate")
    guard learningRate > 0 else {
      throw .outOfRange(
        field: "keyed table learning rate", value: "\(learningRate)", allowed: "> 0")
    }
    let settings = SparseOptimizerSettings(
      kind: SparseOptimizerKind.allCases[kindIndex], learningRate: learningRate,
      l1: try reader.readNonNegative("keyed table l1"),
      l2: try reader.readNonNegative("keyed table l2"),
      beta: try reader.readNonNegative("keyed table beta"),
      initialAccumulator: try reader.readNonNegative("keyed table initial accumulator"))
    let initialization: RowInitialization
    switch try reader.read(UInt8.self, "keyed table initialization") {
    case 0: initialization = .zero
    case 1:
      initialization = .seededFactors(
        seed: try reader.read(UInt64.self, "keyed table initialization seed"),
        scale: try reader.readNonNegative("keyed table initialization scale"))
    case let other:
      throw .outOfRange(
        field: "keyed table initialization", value: String(other),
        allowed: "0 (zero) or 1 (seeded factors)")
    }
    var table = KeyedTable(width: width, optimizer: settings, initialization: initialization)
    let stateWidth = table.stateWidth
    let rowSize = 8 + 8 * width + 8 * stateWidth
    let rowCount = try reader.read(UInt64.self, "keyed table rows")
    // Bounded by the bytes there before anything is allocated.
    try reader.requireElements(Int(clamping: rowCount), of: rowSize, "keyed table rows")
    var previous: UInt64? = nil
    for index in 0..<Int(rowCount) {
      let key = try reader.read(UInt64.self, "keyed table key[\(index)]")
      if let previous, key <= previous {
        throw .invalid(
          field: "keyed table key[\(index)]",
          reason: key == previous
            ? "duplicate key \(key)" : "keys are not ascending (\(key) after \(previous))")
      }
      guard key <= spec.largestKey else {
        throw .outOfRange(
          field: "keyed table key[\(index)]", value: String(key),
          allowed: "0...\(spec.largestKey) for \(modelName)")
      }
      previous = key
      let values = try reader.readFiniteArray(count: width, "keyed table values[\(index)]")
      let state = try reader.readFiniteArray(count: stateWidth, "keyed table state[\(index)]")
      table.restore(key: key, values: values, state: state)
    }
    return CheckpointedKeyedTable(modelName: modelName, table: table)
  }
}
