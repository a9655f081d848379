/// Float64 values read where they were received, not copied: a gradient whose
/// tensors arrived in frames of their own is checked and applied straight from
/// the receive buffer (libzmq's, on the server). The parts are in order and
/// together are one flat vector, in layout order.
///
/// **Valid only during the call that received it.** The memory belongs to the
/// receive buffer, which is released or reused once that call returns: read the
/// values, apply them, or copy them (`copied()`, `append(to:)`) to keep them,
/// but never keep a `BorrowedValues` itself (in a property, a closure that
/// escapes, another thread). This is the one place the rule is stated; every
/// function that takes or hands over a `BorrowedValues` follows it.
///
/// The rule is a convention, not checked by the compiler: Swift 6.3 can state it
/// as `~Escapable` only with the experimental `Lifetimes` feature (without it, no
/// initializer or function may return a `~Escapable` value), and `Span` cannot
/// hold several parts (an array's elements must be escapable).
public struct BorrowedValues {
  /// The parts, in order.
  private let parts: [UnsafeBufferPointer<Double>]
  /// The number of values, over all parts.
  public let count: Int

  /// Values in `parts`, in order. The caller promises that their memory stays
  /// valid and unchanged for as long as the call it hands them to.
  public init(unsafeParts parts: [UnsafeBufferPointer<Double>]) {
    self.parts = parts
    var count = 0
    for part in parts { count += part.count }
    self.count = count
  }

  /// Hands each part, with the flat index of its first value, to `body`, in order.
  public func forEachPart(_ body: (_ offset: Int, _ values: UnsafeBufferPointer<Double>) -> Void) {
    var offset = 0
    for part in parts {
      body(offset, part)
      offset += part.count
    }
  }

  /// The values in one array of their own: a copy to keep.
  public func copied() -> [Double] {
    var values: [Double] = []
    values.reserveCapacity(count)
    append(to: &values)
    return values
  }

  /// Appends a copy of the values to `values` (in its storage, when it has room).
  public func append(to values: inout [Double]) {
    for part in parts { values.append(contentsOf: part) }
  }
}

/// Not to be sent to another thread: the buffer it borrows from is the receiving call's.
@available(*, unavailable)
extension BorrowedValues: Sendable {}
