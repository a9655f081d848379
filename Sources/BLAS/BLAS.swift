import COpenBLAS

/// Dense linear algebra on row-major Float64 and Float32 matrices through
/// OpenBLAS: the one place in pstrain that calls CBLAS. Every routine checks
/// its dimensions against the buffers it is given, so a wrong shape stops with
/// a precondition failure instead of reading or writing out of bounds.
///
/// Threads: OpenBLAS may split one product over several threads. A worker
/// already runs one training loop per core, so pstrain sets one BLAS thread at
/// start-up (`setThreadCount(1)`); benchmarks may set more.
public enum BLAS {
  /// How many threads OpenBLAS uses for one call.
  public static var threadCount: Int { Int(openblas_get_num_threads()) }

  /// Makes OpenBLAS use `count` threads (at least 1) for every later call.
  /// Global to the process: call it once at start-up, before any product runs.
  public static func setThreadCount(_ count: Int) {
    precondition(count >= 1, "BLAS thread count must be at least 1, not \(count)")
    openblas_set_num_threads(Int32(clamping: count))
  }
}

/// Whether a matrix operand is used as stored or transposed.
public enum Transpose: Sendable, Equatable {
  /// The matrix as stored.
  case none
  /// The matrix's transpose.
  case transposed
}
