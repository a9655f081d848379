/// The hidden logistic model that labels generated click logs: a weight per
/// feature id and a bias, click probability σ(bias + Σ weight(id)). It depends on
/// the teacher seed and the feature count only, so a train file and a test file
/// drawn with different row seeds and the same teacher seed share it.
///
/// Calibration. The target is sparse logistic regression trained on
/// 10^6 rows over 10^6 ids reaching a test AUC within 1% of the teacher's, with a
/// teacher as realistic as click models are (AUC ~0.75–0.9). Two things keep a
/// learner from the teacher: ids seen too rarely to estimate their weights, and
/// the rare ids it fits to label noise (plain AdaGrad does not regularize). So:
/// - ids are Zipf-distributed with exponent 1.4 (id 0 the most common): over 10^6
///   ids, the 10^4 most common hold ~98% of the nonzeros, and the long tail of
///   rarely seen ids is there, but is only ~2% of them (with exponent 1 it is
///   ~35%, and the learner's fit to it costs it 3% of AUC);
/// - only the `informativeFeatures` most common ids (the larger of
///   min(features, 1000) and features / 100) have weights; the tail has weight 0
///   and is noise a learner should not fit;
/// - weights are uniform with standard deviation `weightScale` = 0.45: a row's
///   score then has a standard deviation near 1.6 and the teacher an AUC near
///   0.875; the bias is fitted for a click rate near 25%.
/// Measured (single-threaded AdaGrad lr 0.1, batch 100, 24 hash bits, 10^6
/// train rows of seed 1, 10^5 test rows of seed 2, teacher seed 7): teacher
/// AUC 0.878 on the test rows, learned test AUC 0.870 after one epoch and after
/// two, 99.1% of the teacher's.
public struct ClickTeacher: Equatable, Sendable {
  /// The Zipf exponent of feature ids.
  public static let zipfExponent = 1.4
  /// The standard deviation of an informative id's weight.
  public static let weightScale = 0.45
  /// The click rate the bias aims at.
  public static let targetClickRate = 0.25
  /// Rows the bias is fitted on (drawn from the teacher seed).
  static let pilotRows = 4096

  /// Feature ids are 0..<`features`.
  public let features: Int
  /// The seed of the weights and of the bias' pilot rows.
  public let seed: UInt64
  /// Ids 0..<`informativeFeatures` (the most common) have weights; the rest 0.
  public let informativeFeatures: Int
  /// The log-odds of a click for a row of weight 0.
  public let bias: Double

  /// The teacher of `features` ids from `seed`; `sampler` draws ids over them.
  init(features: Int, seed: UInt64, sampler: ZipfSampler) {
    let informative = max(min(features, 1000), features / 100)
    // The bias: bisection for a mean click probability of `targetClickRate` on pilot rows.
    var generator = SplitMix64(seed: seed ^ 0x5EED_B1A5_C11C_4500)
    var row: [UInt64] = []
    var seen = ClickLogRows.emptySeen()
    var scores: [Double] = []
    for _ in 0..<Self.pilotRows {
      ClickLogRows.draw(into: &row, seen: &seen, sampler: sampler, using: &generator)
      scores.append(
        row.reduce(0) { $0 + Self.weight(ofFeature: $1, seed: seed, informative: informative) })
    }
    var (low, high) = (-30.0, 30.0)
    for _ in 0..<80 {
      let middle = (low + high) / 2
      let rate =
        scores.reduce(0) { $0 + BinaryLogLoss.probability(score: middle + $1) }
        / Double(scores.count)
      if rate < Self.targetClickRate { low = middle } else { high = middle }
    }
    self.features = features
    self.seed = seed
    self.informativeFeatures = informative
    self.bias = (low + high) / 2
  }

  /// The weight of feature id `id`: uniform with standard deviation
  /// `weightScale`, from a generator seeded by the teacher seed and the id, for
  /// an informative id; 0 for any other.
  public func weight(ofFeature id: UInt64) -> Double {
    Self.weight(ofFeature: id, seed: seed, informative: informativeFeatures)
  }

  @inline(__always)
  private static func weight(ofFeature id: UInt64, seed: UInt64, informative: Int) -> Double {
    guard id < UInt64(informative) else { return 0 }
    var generator = SplitMix64(seed: seed ^ (id &* 0xD1B5_4A32_D192_ED03))
    return weightScale * 3.0.squareRoot() * (2 * generator.nextUnit() - 1)
  }

  /// The teacher's log-odds of a click on row `row` of `data`.
  public func score(ofRow row: Int, in data: SparseDataset) -> Double {
    var score = bias
    for position in data.range(ofRow: row) {
      score += weight(ofFeature: data.featureIDs[position]) * data.values[position]
    }
    return score
  }

  /// The teacher's ROC AUC on `data`: the best a learner can hope for.
  public func auc(on data: SparseDataset) -> Double {
    BinaryMetrics.auc(scores: (0..<data.count).map { score(ofRow: $0, in: data) }, labels: data.labels) ?? 0.5
  }
}

/// A generated click log: the rows and how well the teacher that labelled them ranks them.
public struct GeneratedClickLog: Sendable {
  /// The rows: binary features (value 1), labels 0 or 1.
  public let dataset: SparseDataset
  /// The model that drew the labels.
  public let teacher: ClickTeacher
  /// The teacher's ROC AUC on `dataset`.
  public let teacherAUC: Double
  /// The fraction of rows labelled 1.
  public let clickRate: Double
}

extension SparseDataset {
  /// The most rows `clicks` draws (50 nonzeros a row at most: 16 GB at most).
  public static let maximumGeneratedClickRows = 20_000_000
  /// The most feature ids `clicks` draws over (its id table takes 12 bytes an id).
  public static let maximumGeneratedClickFeatures = 100_000_000
  /// The fewest feature ids, so a row's 30...50 distinct ids are quick to draw.
  public static let minimumGeneratedClickFeatures = 1000

  /// A synthetic click log of `rows` rows, deterministic in its arguments: each
  /// row has 30...50 distinct feature ids (uniform, so 40 on average) drawn
  /// Zipf over 0..<`features` from `seed`, ascending, each of value 1, and a
  /// label drawn from the logistic `ClickTeacher` of (`features`, `teacherSeed`).
  /// Two logs with different seeds and the same teacher seed and feature count
  /// are train and test data of one problem. The same arguments give the same
  /// bits on machines whose C library computes `exp` and `pow` alike, as glibc does.
  public static func clicks(rows: Int, features: Int, seed: UInt64, teacherSeed: UInt64)
    throws(TrainingMathError) -> GeneratedClickLog
  {
    guard (1...maximumGeneratedClickRows).contains(rows) else {
      throw .invalidGeneratorSettings(
        "rows must be 1...\(maximumGeneratedClickRows), got \(rows)")
    }
    guard (minimumGeneratedClickFeatures...maximumGeneratedClickFeatures).contains(features) else {
      throw .invalidGeneratorSettings(
        "features must be \(minimumGeneratedClickFeatures)...\(maximumGeneratedClickFeatures), got \(features)"
      )
    }
    let sampler = ZipfSampler(count: features, exponent: ClickTeacher.zipfExponent)
    let teacher = ClickTeacher(features: features, seed: teacherSeed, sampler: sampler)
    var generator = SplitMix64(seed: seed)
    var rowStarts = [0]
    var featureIDs: [UInt64] = []
    var labels: [Double] = []
    var scores: [Double] = []
    rowStarts.reserveCapacity(rows + 1)
    featureIDs.reserveCapacity(rows * (ClickLogRows.averageNonzeros + 1))
    labels.reserveCapacity(rows)
    scores.reserveCapacity(rows)
    var row: [UInt64] = []
    var seen = ClickLogRows.emptySeen()
    var clicks = 0
    for _ in 0..<rows {
      ClickLogRows.draw(into: &row, seen: &seen, sampler: sampler, using: &generator)
      var score = teacher.bias
      for id in row { score += teacher.weight(ofFeature: id) }
      let click = generator.nextUnit() < BinaryLogLoss.probability(score: score)
      clicks += click ? 1 : 0
      featureIDs.append(contentsOf: row)
      rowStarts.append(featureIDs.count)
      labels.append(click ? 1 : 0)
      scores.append(score)
    }
    let dataset = SparseDataset(
      rowStarts: rowStarts, featureIDs: featureIDs,
      values: [Double](repeating: 1, count: featureIDs.count), labels: labels)
    return GeneratedClickLog(
      dataset: dataset, teacher: teacher, teacherAUC: BinaryMetrics.auc(scores: scores, labels: labels) ?? 0.5,
      clickRate: Double(clicks) / Double(rows))
  }
}

/// How a click-log row's ids are drawn.
enum ClickLogRows {
  /// The fewest and most nonzeros of a row.
  static let nonzeros = 30...50
  /// Their mean.
  static let averageNonzeros = 40

  /// Replaces `row` with 30...50 distinct ids from `sampler`, ascending: an id
  /// already in the row is drawn again. `seen` marks the common ids (below
  /// 64 × its count) in the row, so their repeats, most redraws, skip the search.
  @inline(__always)
  static func draw(
    into row: inout [UInt64], seen: inout [UInt64], sampler: ZipfSampler,
    using generator: inout SplitMix64
  ) {
    row.removeAll(keepingCapacity: true)
    for word in seen.indices { seen[word] = 0 }
    let marked = UInt64(seen.count * 64)
    let width = UInt64(nonzeros.count)
    let count = nonzeros.lowerBound + Int(generator.next() % width)
    while row.count < count {
      let id = UInt64(sampler.next(using: &generator))
      if id < marked {
        let bit = UInt64(1) << (id & 63)
        if seen[Int(id >> 6)] & bit != 0 { continue }
        seen[Int(id >> 6)] |= bit
      }
      // Binary search for the insertion point; skip an id already present.
      var low = 0
      var high = row.count
      while low < high {
        let middle = (low + high) / 2
        if row[middle] < id { low = middle + 1 } else { high = middle }
      }
      if low < row.count && row[low] == id { continue }
      row.insert(id, at: low)
    }
  }

  /// The `seen` words `draw` marks the 4096 most common ids in.
  static func emptySeen() -> [UInt64] { [UInt64](repeating: 0, count: 64) }
}

