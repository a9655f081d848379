// swift-tools-version:6.0
import PackageDescription

/// Layers, each depending only on those below it:
/// CZeroMQ -> ZeroMQ -> TrainingMath -> WireProtocol -> Roles -> pstrain.
let package = Package(
  name: "pstrain",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "pstrain", targets: ["pstrain"]),
    .executable(name: "codec-fuzzer", targets: ["CodecFuzzer"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    .systemLibrary(
      name: "CZeroMQ",
      path: "Modules/CZeroMQ",
      pkgConfig: "libzmq",
      providers: [.apt(["libzmq3-dev"])]
    ),
    .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
    .target(name: "TrainingMath"),
    .target(name: "WireProtocol", dependencies: ["TrainingMath"]),
    .target(name: "Roles", dependencies: ["ZeroMQ", "TrainingMath", "WireProtocol"]),
    .executableTarget(
      name: "pstrain",
      dependencies: [
        "Roles", "TrainingMath", "WireProtocol", "ZeroMQ",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(name: "CodecFuzzer", dependencies: ["WireProtocol", "TrainingMath"]),
    .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
    .testTarget(name: "TrainingMathTests", dependencies: ["TrainingMath"]),
    .testTarget(name: "WireProtocolTests", dependencies: ["WireProtocol", "TrainingMath"]),
    .testTarget(
      name: "RolesTests", dependencies: ["Roles", "WireProtocol", "TrainingMath", "ZeroMQ"]),
    .testTarget(
      name: "IntegrationTests", dependencies: ["ZeroMQ", "WireProtocol", "TrainingMath"]),
  ],
  swiftLanguageModes: [.v6]
)
