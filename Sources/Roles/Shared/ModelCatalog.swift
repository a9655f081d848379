import TrainingMath
import WireProtocol

/// The models this build can compute, looked up by the name and layout a
/// server or an audit record gives.
public enum ModelCatalog {
  /// The chain model for `layout`, which must be one tensor `w` of L elements.
  public static func chain(for descriptor: ModelDescriptor) throws(RoleError) -> ChainModel {
    guard descriptor.name == ChainModel.name else {
      throw .invalidArgument("unknown model \"\(descriptor.name)\" (this build knows: chain)")
    }
    guard descriptor.layout.count == 1, descriptor.layout[0].name == "w" else {
      throw .invalidArgument("model chain has one tensor w[L], got \(descriptor)")
    }
    return ChainModel(
      layers: descriptor.layout[0].count, elementType: descriptor.layout[0].elementType)
  }

  /// The descriptor of `model`.
  public static func descriptor(of model: some DifferentiableModel) -> ModelDescriptor {
    ModelDescriptor(name: model.name, layout: model.layout)
  }
}
