import COpenBLAS

/// An element type OpenBLAS computes with: `Double` (the `d` routines) or
/// `Float` (the `s` routines). The requirements are the raw row-major CBLAS
/// calls, unchecked; use the checked routines on `BLAS` instead.
public protocol BLASElement: BinaryFloatingPoint, Sendable {
  /// cblas_?gemm, row-major: c ← alpha·op(a)·op(b) + beta·c.
  static func uncheckedGEMM(
    transposeA: Transpose, transposeB: Transpose, m: Int32, n: Int32, k: Int32, alpha: Self,
    a: UnsafePointer<Self>, lda: Int32, b: UnsafePointer<Self>, ldb: Int32, beta: Self,
    c: UnsafeMutablePointer<Self>, ldc: Int32)

  /// cblas_?gemv, row-major: y ← alpha·op(a)·x + beta·y.
  static func uncheckedGEMV(
    transpose: Transpose, m: Int32, n: Int32, alpha: Self, a: UnsafePointer<Self>, lda: Int32,
    x: UnsafePointer<Self>, beta: Self, y: UnsafeMutablePointer<Self>)

  /// cblas_?axpy: y ← alpha·x + y over `n` contiguous elements.
  static func uncheckedAXPY(
    n: Int32, alpha: Self, x: UnsafePointer<Self>, y: UnsafeMutablePointer<Self>)
}

extension Transpose {
  /// The CBLAS flag.
  fileprivate var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

extension Double: BLASElement {
  public static func uncheckedGEMM(
    transposeA: Transpose, transposeB: Transpose, m: Int32, n: Int32, k: Int32, alpha: Double,
    a: UnsafePointer<Double>, lda: Int32, b: UnsafePointer<Double>, ldb: Int32, beta: Double,
    c: UnsafeMutablePointer<Double>, ldc: Int32
  ) {
    cblas_dgemm(
      CblasRowMajor, transposeA.cblas, transposeB.cblas, m, n, k, alpha, a, lda, b, ldb, beta, c,
      ldc)
  }

  public static func uncheckedGEMV(
    transpose: Transpose, m: Int32, n: Int32, alpha: Double, a: UnsafePointer<Double>,
    lda: Int32, x: UnsafePointer<Double>, beta: Double, y: UnsafeMutablePointer<Double>
  ) {
    cblas_dgemv(CblasRowMajor, transpose.cblas, m, n, alpha, a, lda, x, 1, beta, y, 1)
  }

  public static func uncheckedAXPY(
    n: Int32, alpha: Double, x: UnsafePointer<Double>, y: UnsafeMutablePointer<Double>
  ) {
    cblas_daxpy(n, alpha, x, 1, y, 1)
  }
}

extension Float: BLASElement {
  public static func uncheckedGEMM(
    transposeA: Transpose, transposeB: Transpose, m: Int32, n: Int32, k: Int32, alpha: Float,
    a: UnsafePointer<Float>, lda: Int32, b: UnsafePointer<Float>, ldb: Int32, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int32
  ) {
    cblas_sgemm(
      CblasRowMajor, transposeA.cblas, transposeB.cblas, m, n, k, alpha, a, lda, b, ldb, beta, c,
      ldc)
  }

  public static func uncheckedGEMV(
    transpose: Transpose, m: Int32, n: Int32, alpha: Float, a: UnsafePointer<Float>,
    lda: Int32, x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>
  ) {
    cblas_sgemv(CblasRowMajor, transpose.cblas, m, n, alpha, a, lda, x, 1, beta, y, 1)
  }

  public static func uncheckedAXPY(
    n: Int32, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
  ) {
    cblas_saxpy(n, alpha, x, 1, y, 1)
  }
}
