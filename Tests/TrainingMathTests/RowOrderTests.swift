import AllocationCounter
import Testing

@testable import TrainingMath

/// Each epoch's order of a shard's rows: a permutation, the same for the same
/// (seed, shard, epoch), another for another epoch or shard.
@Suite struct RowOrderTests {
  @Test(arguments: [0..<0, 5..<6, 0..<10, 359..<718, 100..<1437])
  func everyRowComesExactlyOncePerEpoch(range: Range<Int>) {
    var order = RowOrder(seed: 1, stream: 2)
    for epoch in 0..<20 {
      order.draw(range, epoch: epoch)
      #expect(order.rows.sorted() == Array(range), "epoch \(epoch)")
      #expect(order.epoch == epoch && order.range == range)
    }
  }

  @Test func theSameKeyDrawsTheSameOrder() {
    var first = RowOrder(seed: 7, stream: 3)
    var second = RowOrder(seed: 7, stream: 3)
    first.draw(0..<500, epoch: 4)
    second.draw(0..<500, epoch: 9)
    second.draw(0..<500, epoch: 4)  // drawn again, after another epoch
    #expect(first.rows == second.rows)
    // Drawn again for the epoch it holds: kept as it is.
    let kept = first.rows
    first.draw(0..<500, epoch: 4)
    #expect(first.rows == kept)
  }

  @Test func epochsShardsAndSeedsDrawDifferentOrders() {
    func rows(seed: UInt64, stream: UInt64, epoch: Int) -> [Int] {
      var order = RowOrder(seed: seed, stream: stream)
      order.draw(0..<200, epoch: epoch)
      return order.rows
    }
    let base = rows(seed: 1, stream: 0, epoch: 0)
    #expect(base != Array(0..<200))
    #expect(rows(seed: 1, stream: 0, epoch: 1) != base)
    #expect(rows(seed: 1, stream: 1, epoch: 0) != base)
    #expect(rows(seed: 2, stream: 0, epoch: 0) != base)
  }

  /// Drawing another epoch's order reuses the buffer, and taking a batch's
  /// rows from it appends in place: nothing is allocated once the buffers are sized.
  @Test func drawingAgainAllocatesNothing() {
    var order = RowOrder(seed: 1, stream: 0)
    order.draw(0..<1000, epoch: 0)
    var batch: [Int] = []
    batch.reserveCapacity(32)
    let before = pstrain_thread_allocations()
    order.draw(0..<1000, epoch: 1)
    for start in stride(from: 0, to: 1000, by: 32) {
      batch.removeAll(keepingCapacity: true)
      order.appendRows(at: start..<min(start + 32, 1000), to: &batch)
    }
    let allocations = pstrain_thread_allocations() - before
    print("row order allocations, one epoch of 1000 rows: \(allocations)")
    #if DEBUG
      #expect(allocations < 100)  // unspecialized generics of the loop itself
    #else
      #expect(allocations == 0)
    #endif
  }

  /// Fixed figures: the order must not change between machines or releases
  /// (a run is reproducible, a push redone after a restart has its rows).
  @Test func theOrderIsPinned() {
    var order = RowOrder(seed: 1, stream: 0)
    order.draw(0..<10, epoch: 0)
    #expect(order.rows == RowOrderTests.pinned)
  }

  static let pinned = [5, 2, 1, 0, 7, 9, 4, 6, 3, 8]
}
