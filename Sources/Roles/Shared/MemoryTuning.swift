import SystemCalls

/// Process-wide allocator settings for a server that moves tensor-sized buffers.
public enum MemoryTuning {
  /// Makes every allocation of 1 MiB or more come from mmap and return to the
  /// system when freed. glibc otherwise raises its mmap threshold after the first
  /// large free, and then keeps a few tensor-sized blocks resident for good.
  public static func returnLargeBuffersToTheSystem() {
    MallocTuning.setMmapThreshold(bytes: 1 << 20)
  }
}
