/// glibc's `mallopt`, declared here because its header (malloc.h) is not part
/// of the Glibc module.
@_silgen_name("mallopt")
private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// Process-wide allocator settings for a server that moves tensor-sized buffers.
public enum MemoryTuning {
  /// Makes every allocation of 1 MiB or more come from mmap and return to the
  /// system when freed. glibc otherwise raises its mmap threshold after the first
  /// large free, and then keeps a few tensor-sized blocks resident for good.
  public static func returnLargeBuffersToTheSystem() {
    #if os(Linux)
      let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
      _ = mallopt(mmapThreshold, 1 << 20)
    #endif
  }
}
