#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A mini-batch of sparse rows resolved against the keys it touches: the sorted
/// unique keys (the bias key among them), and for every nonzero the position of
/// its key in that list, so the model reads and writes rows by position. The
/// keys are what a worker pulls and pushes; the positions are computed once.
public struct SparseBatch: Equatable, Sendable {
  /// The dataset rows, in batch order.
  public let rows: [Int]
  /// The keys the rows touch, sorted and unique; the bias key is the last.
  public let keys: [UInt64]
  /// For each row in `rows`, its nonzeros' positions in `keys`, row after row
  /// (`nonzeroStarts[i]..<nonzeroStarts[i + 1]` for row i of the batch).
  public let keyPositions: [Int32]
  /// Where each batch row's nonzeros start in `keyPositions`; one more than `rows`.
  public let nonzeroStarts: [Int]

  /// The batch of `rows` of `data` for `model`.
  public init(rows: [Int], data: SparseDataset, model: SparseModelSpec) {
    var hashed: [UInt64] = []
    var starts = [0]
    for row in rows {
      for position in data.range(ofRow: row) {
        hashed.append(model.key(ofFeature: data.featureIDs[position]))
      }
      starts.append(hashed.count)
    }
    var unique = hashed
    unique.append(model.biasKey)
    unique.sort()
    var write = 0
    for read in unique.indices where read == 0 || unique[read] != unique[write - 1] {
      unique[write] = unique[read]
      write += 1
    }
    unique.removeLast(unique.count - write)
    var positionOf: [UInt64: Int32] = [:]
    positionOf.reserveCapacity(unique.count)
    for (position, key) in unique.enumerated() { positionOf[key] = Int32(position) }
    self.rows = rows
    self.keys = unique
    self.keyPositions = hashed.map { positionOf[$0]! }
    self.nonzeroStarts = starts
  }

  /// The position of the bias key in `keys`.
  public var biasPosition: Int { keys.count - 1 }
}

extension SparseModelSpec {
  /// How this model's rows start: zero for logistic regression; for a
  /// factorization machine, factors drawn N(0, 0.01²) seeded by `seed` and the key.
  public func rowInitialization(seed: UInt64) -> RowInitialization {
    switch kind {
    case .logisticRegression: .zero
    case .factorizationMachine: .seededFactors(seed: seed, scale: 0.01)
    }
  }

  /// The raw score (log-odds) of batch row `index` with rows `values` (`rowWidth`
  /// per key of `batch.keys`).
  @inlinable
  public func score(
    ofBatchRow index: Int, in batch: SparseBatch, data: SparseDataset, values: [Double],
    factorSums: inout [Double]
  ) -> Double {
    let width = rowWidth
    let start = batch.nonzeroStarts[index]
    let dataStart = data.rowStarts[batch.rows[index]]
    var score = values[batch.biasPosition * width]
    let nonzeros = batch.nonzeroStarts[index + 1] - start
    for offset in 0..<nonzeros {
      score +=
        values[Int(batch.keyPositions[start + offset]) * width] * data.values[dataStart + offset]
    }
    guard width > 1 else { return score }
    let factors = width - 1
    for f in 0..<factors { factorSums[f] = 0 }
    var squares = 0.0
    for offset in 0..<nonzeros {
      let x = data.values[dataStart + offset]
      let base = Int(batch.keyPositions[start + offset]) * width + 1
      for f in 0..<factors {
        let vx = values[base + f] * x
        factorSums[f] += vx
        squares += vx * vx
      }
    }
    var interaction = 0.0
    for f in 0..<factors { interaction += factorSums[f] * factorSums[f] }
    return score + 0.5 * (interaction - squares)
  }

  /// The mean log loss of the batch at `values` (`rowWidth` per key of `batch.keys`).
  public func loss(of batch: SparseBatch, data: SparseDataset, values: [Double]) -> Double {
    var sums = [Double](repeating: 0, count: rowWidth - 1)
    var total = 0.0
    for index in batch.rows.indices {
      let z = score(ofBatchRow: index, in: batch, data: data, values: values, factorSums: &sums)
      total += BinaryLogLoss.loss(score: z, label: data.labels[batch.rows[index]])
    }
    return total / Double(batch.rows.count)
  }

  /// The mean log loss of the batch and its gradient with respect to the rows,
  /// written to `gradient` (`rowWidth` per key of `batch.keys`, resized).
  public func lossAndGradient(
    of batch: SparseBatch, data: SparseDataset, values: [Double], gradient: inout [Double]
  ) -> Double {
    let width = rowWidth
    let factors = width - 1
    gradient.removeAll(keepingCapacity: true)
    gradient.append(contentsOf: repeatElement(0, count: batch.keys.count * width))
    var sums = [Double](repeating: 0, count: factors)
    let scale = 1 / Double(batch.rows.count)
    var total = 0.0
    for index in batch.rows.indices {
      let label = data.labels[batch.rows[index]]
      let z = score(ofBatchRow: index, in: batch, data: data, values: values, factorSums: &sums)
      total += BinaryLogLoss.loss(score: z, label: label)
      let delta = (BinaryLogLoss.probability(score: z) - label) * scale
      gradient[batch.biasPosition * width] += delta
      let start = batch.nonzeroStarts[index]
      let dataStart = data.rowStarts[batch.rows[index]]
      for offset in 0..<(batch.nonzeroStarts[index + 1] - start) {
        let x = data.values[dataStart + offset]
        let base = Int(batch.keyPositions[start + offset]) * width
        gradient[base] += delta * x
        for f in 0..<factors {
          let v = values[base + 1 + f]
          gradient[base + 1 + f] += delta * x * (sums[f] - v * x)
        }
      }
    }
    return total / Double(batch.rows.count)
  }
}

/// The binary log loss on a raw score, computed without overflow for large |score|.
public enum BinaryLogLoss {
  /// σ(score).
  @inlinable
  public static func probability(score: Double) -> Double {
    score >= 0 ? 1 / (1 + exp(-score)) : exp(score) / (1 + exp(score))
  }

  /// −[y·log σ(z) + (1 − y)·log(1 − σ(z))] = log(1 + e^z) − y·z.
  @inlinable
  public static func loss(score: Double, label: Double) -> Double {
    (score > 0 ? score + log1p(exp(-score)) : log1p(exp(score))) - label * score
  }
}
