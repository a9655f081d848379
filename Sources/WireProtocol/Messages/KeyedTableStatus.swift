// The keyed table at the end of `status`: what a server holding a sparse model
// reports about its table and the sparse traffic it served.

/// A server's keyed table (a sparse model's rows) and its sparse traffic, for `status`.
public struct KeyedTableStatus: Equatable, Sendable {
  /// The sparse model's wire name (`SparseModelSpec.wireName`).
  public var modelName: String
  /// Values per row.
  public var width: UInt32
  /// Rows created so far (keys some push touched).
  public var rowsTouched: UInt64
  /// The bytes those rows hold: key, values and optimizer state (`KeyedTable.rowBytes`).
  public var rowBytes: UInt64
  /// The bytes the table has allocated for them (index and spare capacity
  /// included): the memory figure next to `rowBytes`.
  public var bytesAllocated: UInt64
  /// `sparse-pull`s served and `sparse-push`es applied.
  public var pulls: UInt64
  public var pushes: UInt64
  /// Keys read by those pulls and written by those pushes.
  public var keysPulled: UInt64
  public var keysPushed: UInt64
  /// Messages that referred to a cached key list the server held, and to one it did not
  /// (refused with `unknown-key-list`; the worker resent the keys).
  public var keyCacheHits: UInt64
  public var keyCacheMisses: UInt64
  /// Examples (rows) of the pushes applied, and the bytes of the sparse messages
  /// received and sent: the wire cost per example.
  public var examples: UInt64
  public var bytesReceived: UInt64
  public var bytesSent: UInt64

  /// A report of a keyed table.
  public init(
    modelName: String, width: UInt32, rowsTouched: UInt64, rowBytes: UInt64,
    bytesAllocated: UInt64, pulls: UInt64 = 0, pushes: UInt64 = 0, keysPulled: UInt64 = 0,
    keysPushed: UInt64 = 0, keyCacheHits: UInt64 = 0, keyCacheMisses: UInt64 = 0,
    examples: UInt64 = 0, bytesReceived: UInt64 = 0, bytesSent: UInt64 = 0
  ) {
    self.modelName = modelName
    self.width = width
    self.rowsTouched = rowsTouched
    self.rowBytes = rowBytes
    self.bytesAllocated = bytesAllocated
    self.pulls = pulls
    self.pushes = pushes
    self.keysPulled = keysPulled
    self.keysPushed = keysPushed
    self.keyCacheHits = keyCacheHits
    self.keyCacheMisses = keyCacheMisses
    self.examples = examples
    self.bytesReceived = bytesReceived
    self.bytesSent = bytesSent
  }
}

extension KeyedTableStatus {
  /// `str8 model name`, `u32 width`, then twelve `u64`: rows touched, row bytes,
  /// bytes allocated, pulls, pushes, keys pulled, keys pushed, key-cache hits,
  /// key-cache misses, examples, bytes received, bytes sent.
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(modelName, lengthAs: UInt8.self)
    sink.write(width)
    for count in [
      rowsTouched, rowBytes, bytesAllocated, pulls, pushes, keysPulled, keysPushed, keyCacheHits,
      keyCacheMisses, examples, bytesReceived, bytesSent,
    ] {
      sink.write(count)
    }
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> KeyedTableStatus {
    let modelName = try reader.readSparseModelName("keyed table model name")
    let width = try reader.read(UInt32.self, "keyed table width")
    guard (1...UInt32(SparseLimits.maximumWidth)).contains(width) else {
      throw .outOfRange(
        field: "keyed table width", value: String(width),
        allowed: "1...\(SparseLimits.maximumWidth)")
    }
    return KeyedTableStatus(
      modelName: modelName, width: width,
      rowsTouched: try reader.read(UInt64.self, "keyed table rows touched"),
      rowBytes: try reader.read(UInt64.self, "keyed table row bytes"),
      bytesAllocated: try reader.read(UInt64.self, "keyed table bytes allocated"),
      pulls: try reader.read(UInt64.self, "keyed table pulls"),
      pushes: try reader.read(UInt64.self, "keyed table pushes"),
      keysPulled: try reader.read(UInt64.self, "keyed table keys pulled"),
      keysPushed: try reader.read(UInt64.self, "keyed table keys pushed"),
      keyCacheHits: try reader.read(UInt64.self, "keyed table key-cache hits"),
      keyCacheMisses: try reader.read(UInt64.self, "keyed table key-cache misses"),
      examples: try reader.read(UInt64.self, "keyed table examples"),
      bytesReceived: try reader.read(UInt64.self, "keyed table bytes received"),
      bytesSent: try reader.read(UInt64.self, "keyed table bytes sent"))
  }
}
