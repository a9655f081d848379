/// A sparse model over hashed feature ids, as people name it on the command
/// line (`sparse-logreg`, `fm:K`) with `--hash-bits B`: binary logistic
/// regression, or a factorization machine (a weight and a K-vector per feature).
/// Its parameters are rows of one keyed table: feature id f is hashed to key
/// `key(ofFeature: f)` in 0..<2^B, and key 2^B (`biasKey`) holds the bias, so the
/// key space is 0...2^B. Each row is `rowWidth` values: the weight, then (fm)
/// the K factors.
public struct SparseModelSpec: Equatable, Hashable, Sendable, CustomStringConvertible {
  /// The kinds of sparse model this build computes.
  public enum Kind: Equatable, Hashable, Sendable {
    /// p = σ(b + Σ w_f·x_f).
    case logisticRegression
    /// p = σ(b + Σ w_f·x_f + Σ_{f<g} ⟨v_f, v_g⟩·x_f·x_g) (Rendle 2010).
    case factorizationMachine(factors: Int)
  }

  /// The largest `--hash-bits`.
  public static let maximumHashBits = 40
  /// The largest fm factor count.
  public static let maximumFactors = 256

  /// Which model.
  public let kind: Kind
  /// B: feature ids are hashed into 0..<2^B.
  public let hashBits: Int

  /// The model `kind` over 2^`hashBits` hashed keys (1...40 bits, 1...256 factors).
  public init(kind: Kind, hashBits: Int) throws(TrainingMathError) {
    guard (1...Self.maximumHashBits).contains(hashBits) else {
      throw .invalidModel("--hash-bits must be 1...\(Self.maximumHashBits), got \(hashBits)")
    }
    if case .factorizationMachine(let factors) = kind {
      guard (1...Self.maximumFactors).contains(factors) else {
        throw .invalidModel(
          "fm needs 1...\(Self.maximumFactors) factors, as in fm:8, got \(factors)")
      }
    }
    self.kind = kind
    self.hashBits = hashBits
  }

  /// Parses `sparse-logreg` or `fm:K`; nil when `text` names no sparse model (a dense one, say).
  public init?(parsing text: String, hashBits: Int) throws(TrainingMathError) {
    if text == "sparse-logreg" {
      try self.init(kind: .logisticRegression, hashBits: hashBits)
    } else if text.hasPrefix("fm:") {
      guard let factors = Int(text.dropFirst(3)) else {
        throw .invalidModel("fm needs a factor count, as in fm:8, got \"\(text)\"")
      }
      try self.init(kind: .factorizationMachine(factors: factors), hashBits: hashBits)
    } else {
      return nil
    }
  }

  /// The name on the wire and in checkpoints (the characters model names may
  /// hold): `sparse-logreg.hB` or `fm-K.hB`.
  public var wireName: String {
    switch kind {
    case .logisticRegression: "sparse-logreg.h\(hashBits)"
    case .factorizationMachine(let factors): "fm-\(factors).h\(hashBits)"
    }
  }

  /// The model back from its wire name; nil when the name is not a sparse model's.
  public init?(wireName: String) throws(TrainingMathError) {
    guard let dot = wireName.lastIndex(of: "."),
      wireName[wireName.index(after: dot)...].hasPrefix("h"),
      let bits = Int(wireName[wireName.index(dot, offsetBy: 2)...])
    else { return nil }
    let name = String(wireName[..<dot])
    let commandLine = name.hasPrefix("fm-") ? "fm:" + name.dropFirst(3) : name
    guard let spec = try SparseModelSpec(parsing: commandLine, hashBits: bits) else { return nil }
    self = spec
  }

  /// `sparse-logreg` or `fm:K`.
  public var commandLineName: String {
    switch kind {
    case .logisticRegression: "sparse-logreg"
    case .factorizationMachine(let factors): "fm:\(factors)"
    }
  }

  /// Values per row: 1, or 1 + K for a factorization machine.
  public var rowWidth: Int {
    switch kind {
    case .logisticRegression: 1
    case .factorizationMachine(let factors): 1 + factors
    }
  }

  /// The key holding the bias: 2^B, just above the hashed keys.
  public var biasKey: UInt64 { UInt64(1) << UInt64(hashBits) }

  /// Keys are 0...`biasKey`; a key above it is out of range.
  public var largestKey: UInt64 { biasKey }

  /// The key of feature id `id`: a 64-bit mix of the id, top B bits.
  @inlinable
  public func key(ofFeature id: UInt64) -> UInt64 {
    var z = id &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    return z >> UInt64(64 - hashBits)
  }

  public var description: String { "\(commandLineName) (2^\(hashBits) hashed keys)" }
}
