// swift-tools-version:6.0
import PackageDescription

/// Layers, each depending only on those below it:
/// CZeroMQ -> ZeroMQ -> TrainingMath -> WireProtocol -> Roles -> pstrain,
/// COpenBLAS -> BLAS (every CBLAS call) beside ZeroMQ, used by TrainingMath,
/// SystemCalls (every raw POSIX call) beside ZeroMQ, used by Roles and pstrain,
/// and MetricsHTTP (swift-nio) beside Roles, used by pstrain alone.
///
/// Linux only (glibc): no Apple platform is declared because none is built or tested;
/// Sources/pstrain/LinuxOnly.swift stops a build elsewhere with a clear message.
let package = Package(
  name: "pstrain",
  products: [
    .executable(name: "pstrain", targets: ["pstrain"]),
    .executable(name: "codec-fuzzer", targets: ["CodecFuzzer"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
  ],
  targets: [
    .systemLibrary(
      name: "CZeroMQ",
      path: "Modules/CZeroMQ",
      pkgConfig: "libzmq",
      providers: [.apt(["libzmq3-dev"])]
    ),
    .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
    .systemLibrary(
      name: "COpenBLAS",
      path: "Modules/COpenBLAS",
      pkgConfig: "openblas",
      providers: [.apt(["libopenblas-dev"])]
    ),
    // Matrix products for the dense models: the one place that calls CBLAS.
    .target(name: "BLAS", dependencies: ["COpenBLAS"]),
    // Files, signals, clocks, sleeping, process control, limits: the one place
    // above libzmq that calls the C library.
    .target(name: "SystemCalls"),
    .target(
      name: "TrainingMath", dependencies: ["BLAS"],
      // Optimised in debug builds too: the integration tests run real processes of
      // the debug binary, and an unspecialised audit of a dense network there takes
      // seconds where the optimised one takes milliseconds.
      swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
    .target(name: "WireProtocol", dependencies: ["TrainingMath"]),
    .target(
      name: "Roles",
      dependencies: [
        "ZeroMQ", "SystemCalls", "TrainingMath", "WireProtocol",
        .product(name: "Metrics", package: "swift-metrics"),
      ]),
    // The metrics endpoint's HTTP server: only the executable links swift-nio.
    .target(
      name: "MetricsHTTP",
      dependencies: [
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]),
    .executableTarget(
      name: "pstrain",
      dependencies: [
        "Roles", "TrainingMath", "WireProtocol", "ZeroMQ", "SystemCalls", "MetricsHTTP", "BLAS",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(name: "CodecFuzzer", dependencies: ["WireProtocol", "TrainingMath"]),
    .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
    .testTarget(name: "SystemCallsTests", dependencies: ["SystemCalls"]),
    .testTarget(name: "BLASTests", dependencies: ["BLAS"]),
    .testTarget(name: "TrainingMathTests", dependencies: ["TrainingMath", "AllocationCounter"]),
    .testTarget(name: "WireProtocolTests", dependencies: ["WireProtocol", "TrainingMath"]),
    .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
    .testTarget(
      name: "RolesTests",
      dependencies: [
        "Roles", "WireProtocol", "TrainingMath", "ZeroMQ", "SystemCalls", "AllocationCounter",
      ]),
    .testTarget(
      name: "IntegrationTests", dependencies: ["ZeroMQ", "WireProtocol", "TrainingMath"],
      // Python the tests run with the project's .venv (projectPython()).
      exclude: ["Scripts"]),
  ],
  swiftLanguageModes: [.v6]
)
