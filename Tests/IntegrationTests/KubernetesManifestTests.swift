import Foundation
import Testing

/// The kubectl and kubernetes-validate executables, when installed.
func tool(_ name: String) -> String? {
  let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/local/bin"
  return path.split(separator: ":").map { "\($0)/\(name)" }
    .first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// deploy/k8s renders with kustomize and validates against the Kubernetes schemas, offline.
@Suite(
  .enabled(
    if: tool("kubectl") != nil && tool("kubernetes-validate") != nil,
    "needs kubectl and kubernetes-validate"))
struct KubernetesManifestTests {
  static let repository = repositoryRoot

  func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    try runTool(executable, arguments)
  }

  @Test(arguments: ["dev", "production"])
  func overlaysRenderAndValidateStrictly(overlay: String) throws {
    let directory = Self.repository.appendingPathComponent("deploy/k8s/overlays/\(overlay)").path
    let rendered = try run(try #require(tool("kubectl")), ["kustomize", directory])
    #expect(rendered.status == 0, "\(rendered.output)")
    for kind in ["StatefulSet", "Service", "Deployment", "ConfigMap"] {
      #expect(rendered.output.contains("kind: \(kind)"), "\(overlay) lacks a \(kind)")
    }
    // Server, workers and coordinator each serve metrics and are probed over HTTP.
    for use in ["--metrics=0.0.0.0:9100", "path: /readyz", "path: /healthz"] {
      let uses = rendered.output.components(separatedBy: use).count - 1
      #expect(uses == 3, "\(overlay) has \(uses) of \"\(use)\", not one per role")
    }
    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-\(overlay)-\(UUID().uuidString).yaml")
    try rendered.output.write(to: file, atomically: true, encoding: .utf8)
    let validated = try run(try #require(tool("kubernetes-validate")), ["--strict", file.path])
    #expect(validated.status == 0, "\(validated.output)")
    #expect(!validated.output.contains("ERROR"), "\(validated.output)")
  }
}
