/// A model as people name it on the command line (`chain`, `linear`,
/// `softmax`, `mlp:128,64`) with the choices that go with it, and the way back
/// from a model's wire name and layout to the model.
public struct ModelSpec: Equatable, Sendable, CustomStringConvertible {
  /// The kinds of model this build computes.
  public enum Kind: Equatable, Sendable {
    /// The tutorial's scalar chain of `layers` weights.
    case chain
    /// y = W·x + b, squared error.
    case linear
    /// Multinomial logistic regression, cross-entropy.
    case softmax
    /// Dense layers of these widths between input and output.
    case mlp(hidden: [Int])
  }

  /// Which model.
  public var kind: Kind
  /// The activation between an MLP's layers.
  public var activation: Activation
  /// Whether an MLP is trained with squared error (one output) instead of
  /// softmax cross-entropy.
  public var squaredLoss: Bool

  /// The spec `kind` with `activation` and the loss.
  public init(kind: Kind, activation: Activation = .relu, squaredLoss: Bool = false) {
    self.kind = kind
    self.activation = activation
    self.squaredLoss = squaredLoss
  }

  /// Parses `chain`, `linear`, `softmax` or `mlp:H1[,H2,...]` (widths 1...65536,
  /// at most 16 hidden layers).
  public init(parsing text: String, activation: Activation = .relu, squaredLoss: Bool = false)
    throws(TrainingMathError)
  {
    let known = "chain, linear, softmax, mlp:H1[,H2,...]"
    switch text {
    case "chain": self.init(kind: .chain, activation: activation, squaredLoss: true)
    case "linear": self.init(kind: .linear, activation: activation, squaredLoss: true)
    case "softmax": self.init(kind: .softmax, activation: activation, squaredLoss: false)
    default:
      guard text.hasPrefix("mlp:") else {
        throw .invalidModel("unknown model \"\(text)\" (known: \(known))")
      }
      let widths = text.dropFirst(4).split(separator: ",", omittingEmptySubsequences: false)
      var hidden: [Int] = []
      for width in widths {
        guard let value = Int(width), (1...65_536).contains(value) else {
          throw .invalidModel(
            "mlp layer width \"\(width)\" in \"\(text)\" is not a whole number 1...65536")
        }
        hidden.append(value)
      }
      guard (1...16).contains(hidden.count) else {
        throw .invalidModel("mlp needs 1 to 16 hidden layers, as in mlp:128 or mlp:256,128")
      }
      self.init(kind: .mlp(hidden: hidden), activation: activation, squaredLoss: squaredLoss)
    }
  }

  /// Whether the model classifies (its outputs are class scores).
  public var isClassifier: Bool {
    switch kind {
    case .chain, .linear: false
    case .softmax: true
    case .mlp: !squaredLoss
    }
  }

  public var description: String {
    switch kind {
    case .chain: "chain"
    case .linear: "linear"
    case .softmax: "softmax"
    case .mlp(let hidden):
      "mlp:" + hidden.map(String.init).joined(separator: ",") + " (\(activation.rawValue)"
        + (squaredLoss ? ", squared error)" : ")")
    }
  }
}

extension ModelSpec {
  /// The model for data of `features` features and, for a classifier,
  /// `classes` classes; `layers` is the chain's depth.
  public func model(
    features: Int, classes: Int, layers: Int = 3, elementType: ElementType = .float64
  ) throws(TrainingMathError) -> AnyDifferentiableModel {
    switch kind {
    case .chain:
      guard features == 1 else {
        throw .invalidModel(
          "the chain model takes one feature, the data has \(features): pick --model linear, softmax or mlp:H"
        )
      }
      guard (1...1_000_000_000).contains(layers) else {
        throw .invalidModel("the chain needs 1...1000000000 layers, got \(layers)")
      }
      return AnyDifferentiableModel(ChainModel(layers: layers, elementType: elementType))
    case .linear, .softmax, .mlp(_):
      guard (1...1_000_000).contains(features) else {
        throw .invalidModel("a dense model needs 1...1000000 features, got \(features)")
      }
      let outputs = isClassifier ? classes : 1
      guard !isClassifier || (2...100_000).contains(classes) else {
        throw .invalidModel("a classifier needs 2...100000 classes, got \(classes)")
      }
      var hidden: [Int] = []
      if case .mlp(let widths) = kind { hidden = widths }
      let widths = [features] + hidden + [outputs]
      var parameters = 0
      for layer in 1..<widths.count { parameters += (widths[layer - 1] + 1) * widths[layer] }
      guard parameters <= Int(Int32.max) else {
        throw .invalidModel("\(self) over \(features) features has \(parameters) parameters, above 2^31 - 1")
      }
      return AnyDifferentiableModel(
        DenseNetwork(
          inputCount: features, hiddenSizes: hidden, outputCount: outputs, activation: activation,
          loss: isClassifier ? .crossEntropy : .squared, elementType: elementType))
    }
  }

  /// The model a server or an audit record names: its wire name (`chain`,
  /// `linear`, `softmax`, `mlp.relu`, `mlp.tanh.squared`, ...) and layout.
  public static func model(named name: String, layout: [TensorSpec]) throws(TrainingMathError)
    -> AnyDifferentiableModel
  {
    if name == ChainModel.name {
      guard layout.count == 1, layout[0].name == "w", layout[0].rank == 1 else {
        throw .invalidModel("model chain has one tensor w[L], got \(layout)")
      }
      return AnyDifferentiableModel(
        ChainModel(layers: layout[0].count, elementType: layout[0].elementType))
    }
    guard DenseNetwork.isWireName(name) else {
      throw .invalidModel(
        "unknown model \"\(name)\" (this build knows: chain, linear, softmax, mlp.<activation>[.squared])"
      )
    }
    return AnyDifferentiableModel(try DenseNetwork(named: name, layout: Self.restoringShapes(layout)))
  }

  /// `layout` with each dense layer's weight given its [in, out] shape where
  /// it arrived as a vector (a tensor split across server shards comes back
  /// as one): out is the bias's length that follows it.
  static func restoringShapes(_ layout: [TensorSpec]) -> [TensorSpec] {
    var result = layout
    for index in result.indices.dropLast() {
      let (weight, bias) = (result[index], result[index + 1])
      guard weight.name.hasSuffix(".weight"), weight.rank == 1, bias.name.hasSuffix(".bias"),
        bias.count > 0, weight.count % bias.count == 0
      else { continue }
      result[index] = TensorSpec(
        name: weight.name, shape: [weight.count / bias.count, bias.count],
        elementType: weight.elementType)
    }
    return result
  }
}
