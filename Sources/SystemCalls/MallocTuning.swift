/// Settings of glibc's allocator (mallopt).
public enum MallocTuning {
  /// Makes every allocation of `bytes` or more come from mmap, so it returns to
  /// the system when freed (M_MMAP_THRESHOLD; setting it also stops glibc from
  /// raising the threshold on its own). Returns whether glibc accepted it.
  @discardableResult
  public static func setMmapThreshold(bytes: Int32) -> Bool { Syscall.setMmapThreshold(bytes) }
}
