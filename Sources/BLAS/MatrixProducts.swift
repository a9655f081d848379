/// The checked products: row-major, packed matrices (each row directly follows
/// the previous one), with the shapes checked against the buffers' counts.
extension BLAS {
  /// c ← alpha·op(a)·op(b) + beta·c, where op(a) is `rows × inner`, op(b) is
  /// `inner × columns` and c is `rows × columns`, all row-major; `a` is stored
  /// `rows × inner` (or `inner × rows` when transposed), likewise `b`. `b` and
  /// `c` are packed; `a`'s stored rows start `strideA` elements apart (default:
  /// packed), so `a` may be a band of columns of a wider matrix. Only the first
  /// `rows·columns` elements of `c` are written, so a buffer sized for a larger
  /// batch can hold a smaller one. `c` must not overlap `a` or `b`. With `beta`
  /// 0, `c`'s old contents are ignored.
  @inlinable
  public static func multiply<Element: BLASElement>(
    _ a: UnsafeBufferPointer<Element>, _ transposeA: Transpose = .none, strideA: Int? = nil,
    _ b: UnsafeBufferPointer<Element>, _ transposeB: Transpose = .none,
    into c: UnsafeMutableBufferPointer<Element>,
    rows: Int, columns: Int, inner: Int, alpha: Element = 1, beta: Element = 0
  ) {
    precondition(rows >= 0 && columns >= 0 && inner >= 0, "negative matrix dimension")
    let (storedRows, storedColumns) = transposeA == .none ? (rows, inner) : (inner, rows)
    let lda = strideA ?? storedColumns
    precondition(
      lda >= storedColumns, "a's row stride \(lda) is below its \(storedColumns) columns")
    let aSpan = storedRows == 0 || storedColumns == 0 ? 0 : (storedRows - 1) * lda + storedColumns
    precondition(a.count >= aSpan, "a holds \(a.count), needs \(rows)×\(inner) at stride \(lda)")
    precondition(b.count >= inner * columns, "b holds \(b.count), needs \(inner)×\(columns)")
    precondition(c.count >= rows * columns, "c holds \(c.count), needs \(rows)×\(columns)")
    precondition(
      !overlaps(c, a, rows * columns, aSpan)
        && !overlaps(c, b, rows * columns, inner * columns), "c overlaps an operand")
    guard rows > 0 && columns > 0 else { return }
    guard inner > 0 else {
      for index in 0..<(rows * columns) { c[index] = beta == 0 ? 0 : beta * c[index] }
      return
    }
    Element.uncheckedGEMM(
      transposeA: transposeA, transposeB: transposeB, m: int32(rows), n: int32(columns),
      k: int32(inner), alpha: alpha, a: a.baseAddress!, lda: int32(max(1, lda)),
      b: b.baseAddress!, ldb: int32(transposeB == .none ? columns : inner), beta: beta,
      c: c.baseAddress!, ldc: int32(columns))
  }

  /// `multiply` on arrays, without copying them.
  @inlinable
  public static func multiply<Element: BLASElement>(
    _ a: [Element], _ transposeA: Transpose = .none,
    _ b: [Element], _ transposeB: Transpose = .none,
    into c: inout [Element], rows: Int, columns: Int, inner: Int,
    alpha: Element = 1, beta: Element = 0
  ) {
    a.withUnsafeBufferPointer { a in
      b.withUnsafeBufferPointer { b in
        c.withUnsafeMutableBufferPointer { c in
          multiply(
            a, transposeA, b, transposeB, into: c, rows: rows, columns: columns, inner: inner,
            alpha: alpha, beta: beta)
        }
      }
    }
  }

  /// y ← alpha·op(a)·x + beta·y, where `a` is stored `rows × columns`
  /// (row-major, packed): x has `columns` elements and y `rows` when `a` is
  /// used as stored, the other way round when transposed. `y` must not
  /// overlap `a` or `x`.
  @inlinable
  public static func multiplyVector<Element: BLASElement>(
    _ a: UnsafeBufferPointer<Element>, _ transpose: Transpose = .none,
    _ x: UnsafeBufferPointer<Element>, into y: UnsafeMutableBufferPointer<Element>,
    rows: Int, columns: Int, alpha: Element = 1, beta: Element = 0
  ) {
    precondition(rows >= 0 && columns >= 0, "negative matrix dimension")
    let (xCount, yCount) = transpose == .none ? (columns, rows) : (rows, columns)
    precondition(a.count >= rows * columns, "a holds \(a.count), needs \(rows)×\(columns)")
    precondition(x.count >= xCount && y.count >= yCount, "vector shorter than the matrix")
    precondition(
      !overlaps(y, a, yCount, rows * columns) && !overlaps(y, x, yCount, xCount),
      "y overlaps an operand")
    guard yCount > 0 else { return }
    guard xCount > 0 else {
      for index in 0..<yCount { y[index] = beta == 0 ? 0 : beta * y[index] }
      return
    }
    Element.uncheckedGEMV(
      transpose: transpose, m: int32(rows), n: int32(columns), alpha: alpha, a: a.baseAddress!,
      lda: int32(columns), x: x.baseAddress!, beta: beta, y: y.baseAddress!)
  }

  /// y ← alpha·x + y over the first `count` elements. `y` must not overlap `x`.
  @inlinable
  public static func addScaled<Element: BLASElement>(
    _ x: UnsafeBufferPointer<Element>, alpha: Element, to y: UnsafeMutableBufferPointer<Element>,
    count: Int
  ) {
    precondition(count >= 0 && x.count >= count && y.count >= count, "vector shorter than count")
    precondition(!overlaps(y, x, count, count), "y overlaps x")
    guard count > 0 else { return }
    Element.uncheckedAXPY(n: int32(count), alpha: alpha, x: x.baseAddress!, y: y.baseAddress!)
  }

  /// A dimension as CBLAS's 32-bit integer; larger ones stop the process.
  @usableFromInline
  static func int32(_ value: Int) -> Int32 {
    guard let narrow = Int32(exactly: value) else {
      preconditionFailure("matrix dimension \(value) exceeds CBLAS's 32-bit range")
    }
    return narrow
  }

  /// Whether the first `outputCount` elements of `output` share memory with
  /// the first `inputCount` of `input`.
  @usableFromInline
  static func overlaps<Element>(
    _ output: UnsafeMutableBufferPointer<Element>, _ input: UnsafeBufferPointer<Element>,
    _ outputCount: Int, _ inputCount: Int
  ) -> Bool {
    guard outputCount > 0, inputCount > 0, let out = output.baseAddress,
      let into = input.baseAddress
    else { return false }
    let outStart = UnsafePointer(out)
    return outStart < into + inputCount && into < outStart + outputCount
  }
}
