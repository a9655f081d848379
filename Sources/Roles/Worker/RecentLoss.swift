/// The loss of a worker's batches since it was last read: the metrics' training loss
/// (`pstrain_train_loss`), smoother than one batch's and fresher than an epoch's.
struct RecentLoss {
  private var sum = 0.0
  private var batches = 0

  /// Counts one batch's loss.
  mutating func add(_ loss: Double) {
    sum += loss
    batches += 1
  }

  /// The mean of the losses added since the last call (nil when none was), and starts over.
  mutating func drain() -> Double? {
    defer { (sum, batches) = (0, 0) }
    return batches > 0 ? sum / Double(batches) : nil
  }
}
