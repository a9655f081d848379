import BLAS
import Testing

/// The checked CBLAS products against plain loops, for both element types.
@Suite struct MatrixProductTests {
  /// Small integers: every product is exact in both types, so results compare with ==.
  static func matrix<Element: BLASElement>(_ count: Int, seed: Int) -> [Element] {
    (0..<count).map { Element(($0 * 7 + seed * 3) % 11) - 5 }
  }

  /// op(a)·op(b) by definition, for row-major packed storage.
  static func naiveProduct<Element: BLASElement>(
    _ a: [Element], _ ta: Transpose, _ b: [Element], _ tb: Transpose, rows: Int, columns: Int,
    inner: Int
  ) -> [Element] {
    var c = [Element](repeating: 0, count: rows * columns)
    for i in 0..<rows {
      for j in 0..<columns {
        var sum: Element = 0
        for p in 0..<inner {
          let x = ta == .none ? a[i * inner + p] : a[p * rows + i]
          let y = tb == .none ? b[p * columns + j] : b[j * inner + p]
          sum += x * y
        }
        c[i * columns + j] = sum
      }
    }
    return c
  }

  func checkProducts<Element: BLASElement>(_: Element.Type) {
    let (rows, columns, inner) = (5, 3, 4)
    for ta in [Transpose.none, .transposed] {
      for tb in [Transpose.none, .transposed] {
        let a: [Element] = Self.matrix(rows * inner, seed: 1)
        let b: [Element] = Self.matrix(inner * columns, seed: 2)
        let expected = Self.naiveProduct(
          a, ta, b, tb, rows: rows, columns: columns, inner: inner)
        // c has room for more rows: only the first rows·columns are written.
        var c = [Element](repeating: 99, count: rows * columns + 6)
        BLAS.multiply(a, ta, b, tb, into: &c, rows: rows, columns: columns, inner: inner)
        #expect(Array(c[..<(rows * columns)]) == expected)
        #expect(c[(rows * columns)...].allSatisfy { $0 == 99 })
        // beta 1 accumulates, alpha scales.
        BLAS.multiply(
          a, ta, b, tb, into: &c, rows: rows, columns: columns, inner: inner, alpha: 2, beta: 1)
        #expect(Array(c[..<(rows * columns)]) == expected.map { 3 * $0 })
      }
    }
  }

  @Test func productsMatchLoopsInDouble() { checkProducts(Double.self) }
  @Test func productsMatchLoopsInFloat() { checkProducts(Float.self) }

  @Test func emptyInnerDimensionScalesByBeta() {
    var c: [Double] = [1, 2, 3, 4]
    BLAS.multiply([], .none, [], .none, into: &c, rows: 2, columns: 2, inner: 0, beta: 2)
    #expect(c == [2, 4, 6, 8])
    BLAS.multiply([], .none, [], .none, into: &c, rows: 2, columns: 2, inner: 0)
    #expect(c == [0, 0, 0, 0])
  }

  func checkVectorRoutines<Element: BLASElement>(_: Element.Type) {
    let (rows, columns) = (4, 3)
    let a: [Element] = Self.matrix(rows * columns, seed: 3)
    let x: [Element] = Self.matrix(rows, seed: 4)
    var y = [Element](repeating: 1, count: columns)
    a.withUnsafeBufferPointer { a in
      x.withUnsafeBufferPointer { x in
        y.withUnsafeMutableBufferPointer { y in
          BLAS.multiplyVector(a, .transposed, x, into: y, rows: rows, columns: columns, beta: 1)
        }
      }
    }
    let expected = (0..<columns).map { j in
      (0..<rows).reduce(Element(1)) { $0 + a[$1 * columns + j] * x[$1] }
    }
    #expect(y == expected)
    var z = [Element](repeating: 0, count: rows)
    let w = Array(x[..<columns])
    a.withUnsafeBufferPointer { a in
      w.withUnsafeBufferPointer { w in
        z.withUnsafeMutableBufferPointer { z in
          BLAS.multiplyVector(a, .none, w, into: z, rows: rows, columns: columns, alpha: 2)
        }
      }
    }
    let expectedZ = (0..<rows).map { i in
      2 * (0..<columns).reduce(Element(0)) { $0 + a[i * columns + $1] * w[$1] }
    }
    #expect(z == expectedZ)
    var sum: [Element] = [1, 2, 3]
    let step: [Element] = [4, 5, 6]
    step.withUnsafeBufferPointer { step in
      sum.withUnsafeMutableBufferPointer { sum in
        BLAS.addScaled(step, alpha: -1, to: sum, count: 2)
      }
    }
    #expect(sum == [-3, -3, 3])
  }

  @Test func vectorRoutinesMatchLoopsInDouble() { checkVectorRoutines(Double.self) }
  @Test func vectorRoutinesMatchLoopsInFloat() { checkVectorRoutines(Float.self) }

  /// pstrain runs one BLAS thread per process; the setting reads back.
  @Test func threadCountReadsBack() {
    BLAS.setThreadCount(1)
    #expect(BLAS.threadCount == 1)
  }
}

/// A band of columns of a wider matrix, used in place through `strideA`.
@Suite struct StridedProductTests {
  @Test(arguments: [Transpose.none, .transposed])
  func bandOfColumnsMatchesPackedCopy(transposeA: Transpose) {
    // `wide` is stored 4 × 7; the band is columns 2..<5 (4 × 3).
    let wide: [Double] = (0..<28).map { Double(($0 * 5) % 9) - 4 }
    let band = (0..<4).flatMap { row in (2..<5).map { wide[row * 7 + $0] } }
    // op(band) is 4 × 3 as stored, 3 × 4 transposed; b matches the inner size.
    let (rows, inner) = transposeA == .none ? (4, 3) : (3, 4)
    let b: [Double] = (0..<(inner * 2)).map { Double($0) - 3 }
    var expected = [Double](repeating: 0, count: rows * 2)
    BLAS.multiply(band, transposeA, b, into: &expected, rows: rows, columns: 2, inner: inner)
    var c = [Double](repeating: 0, count: rows * 2)
    wide.withUnsafeBufferPointer { wide in
      b.withUnsafeBufferPointer { b in
        c.withUnsafeMutableBufferPointer { c in
          BLAS.multiply(
            UnsafeBufferPointer(rebasing: wide[2...]), transposeA, strideA: 7, b, into: c,
            rows: rows, columns: 2, inner: inner)
        }
      }
    }
    #expect(c == expected)
  }
}
