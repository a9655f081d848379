import WireProtocol

/// The server's plan for handing out rows: every epoch the dataset is cut into
/// chunks of `chunkRows` rows, leased one at a time to workers. A chunk's rows
/// are applied in order, so the rows still to do form its tail; when its holder
/// leaves or dies, that tail goes to the next worker that asks. Each row's
/// gradient is applied exactly once per epoch.
public struct LeasedWork: Equatable, Sendable {
  /// One chunk of an epoch.
  public struct Chunk: Equatable, Sendable {
    /// The chunk's rows.
    public var rows: Range<Int>
    /// First row not yet applied.
    public var next: Int
    /// The worker holding it, if any.
    public var holder: UInt32?

    var isDone: Bool { next >= rows.upperBound }
  }

  /// What a lease request gets.
  public enum Grant: Equatable, Sendable {
    case lease(epoch: UInt64, rows: Range<Int>)
    case wait
    case finished
  }

  /// Epochs to train.
  public let epochs: UInt64
  /// Rows per chunk.
  public let chunkRows: Int
  /// Rows in the dataset (0 until the first worker joins).
  public private(set) var rows = 0
  /// The current epoch (equal to `epochs` once finished).
  public private(set) var epoch: UInt64 = 0
  /// The chunks of the current epoch.
  public private(set) var chunks: [Chunk] = []
  /// Rows of this epoch already applied.
  public private(set) var rowsApplied: UInt64 = 0

  /// A plan for `epochs` epochs in chunks of `chunkRows` rows.
  public init(epochs: UInt64, chunkRows: Int) {
    precondition(chunkRows >= 1)
    self.epochs = epochs
    self.chunkRows = chunkRows
  }

  /// Restores a plan from a checkpoint: the epoch and each chunk's next row.
  public init(
    epochs: UInt64, chunkRows: Int, rows: Int, epoch: UInt64, nextRows: [Int]
  ) {
    self.init(epochs: epochs, chunkRows: chunkRows)
    self.rows = rows
    self.epoch = epoch
    cutChunks()
    guard nextRows.count == chunks.count else { return }
    for index in chunks.indices {
      chunks[index].next = min(
        max(nextRows[index], chunks[index].rows.lowerBound), chunks[index].rows.upperBound)
    }
    rowsApplied = UInt64(chunks.reduce(0) { $0 + ($1.next - $1.rows.lowerBound) })
  }

  /// Whether every epoch is done.
  public var isFinished: Bool { epoch >= epochs }

  /// Sets the dataset size, once, when the first worker joins.
  public mutating func setRows(_ count: Int) {
    guard rows == 0 else { return }
    rows = count
    cutChunks()
  }

  private mutating func cutChunks() {
    chunks = stride(from: 0, to: rows, by: chunkRows).map { start in
      let range = start..<min(start + chunkRows, rows)
      return Chunk(rows: range, next: start, holder: nil)
    }
    rowsApplied = 0
  }

  /// The rows `worker` should train on next.
  public mutating func grant(to worker: UInt32) -> Grant {
    if isFinished || rows == 0 { return isFinished ? .finished : .wait }
    if let held = chunks.firstIndex(where: { $0.holder == worker && !$0.isDone }) {
      return lease(of: held)
    }
    if chunks.allSatisfy(\.isDone) {
      epoch += 1
      if isFinished { return .finished }
      cutChunks()
    }
    guard let free = chunks.firstIndex(where: { $0.holder == nil && !$0.isDone }) else {
      return .wait
    }
    chunks[free].holder = worker
    return lease(of: free)
  }

  private func lease(of index: Int) -> Grant {
    .lease(epoch: epoch, rows: chunks[index].next..<chunks[index].rows.upperBound)
  }

  /// Why `rows` cannot be applied for `worker`, or nil when they are exactly
  /// the next rows of the chunk it holds, after `pending` rows it already pushed
  /// that wait for their step.
  public func refusal(of rows: some Collection<Int>, from worker: UInt32, after pending: Int = 0)
    -> String?
  {
    guard let index = chunks.firstIndex(where: { $0.holder == worker && !$0.isDone }) else {
      return "worker \(worker) holds no lease; ask for one"
    }
    let chunk = chunks[index]
    let start = chunk.next + pending
    let expected = start..<min(start + rows.count, chunk.rows.upperBound)
    guard rows.elementsEqual(expected) else {
      return
        "rows \(Array(rows.prefix(4))) are not the next rows \(Array(expected.prefix(4))) of the lease \(chunk.next)..<\(chunk.rows.upperBound) of epoch \(epoch)"
    }
    return nil
  }

  /// Records `rows` (accepted by `refusal`) as applied.
  public mutating func markApplied(_ rows: some Collection<Int>, from worker: UInt32) {
    guard let index = chunks.firstIndex(where: { $0.holder == worker && !$0.isDone }) else {
      return
    }
    chunks[index].next += rows.count
    rowsApplied += UInt64(rows.count)
    if chunks[index].isDone { chunks[index].holder = nil }
  }

  /// Takes back whatever `worker` holds: the rest of its chunk goes to the next asker.
  public mutating func release(_ worker: UInt32) {
    for index in chunks.indices where chunks[index].holder == worker { chunks[index].holder = nil }
  }

  /// Takes back every lease (after a restart, no worker holds anything).
  public mutating func releaseAll() {
    for index in chunks.indices { chunks[index].holder = nil }
  }

  /// Whether `worker` holds unfinished rows.
  public func holdsLease(_ worker: UInt32) -> Bool {
    chunks.contains { $0.holder == worker && !$0.isDone }
  }
}
