/// Deterministic synthetic datasets: the same arguments give the same bits.
extension Dataset {
  /// The most rows a generator writes.
  public static let maximumGeneratedRows = 100_000_000
  /// The most features a generator writes per row.
  public static let maximumGeneratedFeatures = 100_000
  /// The most classes `generateClassification` draws.
  public static let maximumGeneratedClasses = 1000
  /// The most values (rows × features) a generator holds: 8 GB of features.
  public static let maximumGeneratedValues = 1_000_000_000

  /// `rows` samples from `seed`: x uniform in [−1, 1), label = −x plus Gaussian
  /// noise of standard deviation `noise`. The same arguments give the same bits;
  /// with noise, on machines whose C library computes `log` and `cos` alike
  /// (`SplitMix64.nextGaussian`), as glibc does everywhere.
  public static func generate(rows: Int, seed: UInt64, noise: Double = 0) throws(TrainingMathError)
    -> Dataset
  {
    try checkRows(rows)
    guard noise.isFinite, noise >= 0 else {
      throw .invalidGeneratorSettings("noise must be a finite number >= 0, got \(noise)")
    }
    var generator = SplitMix64(seed: seed)
    var samples: [Sample] = []
    samples.reserveCapacity(rows)
    for index in 0..<rows {
      let x = 2 * generator.nextUnit() - 1
      let label = noise > 0 ? -x + noise * generator.nextGaussian() : -x
      samples.append(Sample(index: index, x: x, label: label))
    }
    return Dataset(samples: samples)
  }

  /// `rows` rows of `features` features `f0...` and a class `label` 0..<`classes`,
  /// from `seed`: a problem a linear model gets roughly right and a small MLP
  /// better. Row r has class r mod `classes` (so classes are balanced and every
  /// contiguous shard holds them all). Each class k has an offset b_k and an arm
  /// c_k, random vectors of expected length 2.5 and 3; a row of class k is
  /// b_k ± c_k (sign at random) plus noise of unit variance per feature. The
  /// offsets are what a linear model sees; the two arms, which cancel in the
  /// class mean, take a nonlinear boundary. The noise is a sum of four uniforms
  /// (nearly Gaussian), and only +, −, ×, ÷ and square roots are used, so the
  /// bits are the same on every machine.
  public static func generateClassification(
    features: Int, classes: Int, rows: Int, seed: UInt64
  ) throws(TrainingMathError) -> Dataset {
    try checkRows(rows)
    guard features >= 1, features <= maximumGeneratedFeatures else {
      throw .invalidGeneratorSettings(
        "features must be 1...\(maximumGeneratedFeatures), got \(features)")
    }
    guard classes >= 2, classes <= maximumGeneratedClasses else {
      throw .invalidGeneratorSettings(
        "classes must be 2...\(maximumGeneratedClasses), got \(classes)")
    }
    guard rows <= maximumGeneratedValues / features else {
      throw .invalidGeneratorSettings(
        "rows × features must be at most \(maximumGeneratedValues), got \(rows) × \(features)")
    }
    let offsetLength = 2.5
    let armLength = 3.0
    // A coordinate uniform in [-a, a) has mean square a²/3, so a vector of them has
    // expected squared length length² when a = length × √(3/features).
    let coordinateScale = (3 / Double(features)).squareRoot()
    let noiseScale = Double(3).squareRoot()  // four uniforms sum to variance 1/3
    var generator = SplitMix64(seed: seed)
    let centreSeed = generator.next()
    var values: [Double] = []
    var labels: [Double] = []
    values.reserveCapacity(rows * features)
    labels.reserveCapacity(rows)
    for row in 0..<rows {
      let label = row % classes
      // The class's offset and arm are drawn again for each row from a stream
      // of the class's own, instead of being held: classes × features may be large.
      var centres = SplitMix64(seed: scrambled(centreSeed ^ UInt64(label)))
      let sign: Double = generator.next() & 1 == 0 ? 1 : -1
      for _ in 0..<features {
        let offset = (2 * centres.nextUnit() - 1) * coordinateScale * offsetLength
        let arm = (2 * centres.nextUnit() - 1) * coordinateScale * armLength
        let uniforms =
          generator.nextUnit() + generator.nextUnit() + generator.nextUnit()
          + generator.nextUnit()
        values.append(offset + sign * arm + (uniforms - 2) * noiseScale)
      }
      labels.append(Double(label))
    }
    return Dataset(
      featureNames: (0..<features).map { "f\($0)" }, labelName: "label", features: values,
      labels: labels)
  }

  /// `value` hashed: the first output of a SplitMix64 seeded with it, so that
  /// nearby values seed unrelated streams.
  private static func scrambled(_ value: UInt64) -> UInt64 {
    var generator = SplitMix64(seed: value)
    return generator.next()
  }

  private static func checkRows(_ rows: Int) throws(TrainingMathError) {
    guard rows >= 1, rows <= maximumGeneratedRows else {
      throw .invalidGeneratorSettings("rows must be 1...\(maximumGeneratedRows), got \(rows)")
    }
  }
}
