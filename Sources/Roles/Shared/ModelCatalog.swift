import TrainingMath
import WireProtocol

/// The models this build can compute, looked up by the name and layout a
/// server or an audit record gives.
public enum ModelCatalog {
  /// The model `descriptor` describes.
  public static func model(for descriptor: ModelDescriptor) throws(RoleError)
    -> AnyDifferentiableModel
  {
    do {
      return try ModelSpec.model(named: descriptor.name, layout: descriptor.layout)
    } catch {
      throw .invalidArgument("\(error) (the server's model: \(descriptor))")
    }
  }

  /// The descriptor of `model`.
  public static func descriptor(of model: some DifferentiableModel) -> ModelDescriptor {
    ModelDescriptor(name: model.name, layout: model.layout)
  }
}
