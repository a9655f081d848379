import Foundation
import Testing

/// deploy/container/build.sh's command line: help, and clear errors before any work.
struct ContainerBuildScriptTests {
  static let script = repositoryRoot.appendingPathComponent("deploy/container/build.sh").path

  @Test func helpPrintsUsage() throws {
    let run = try runTool("/bin/bash", [Self.script, "-h"], seconds: 30)
    #expect(run.status == 0)
    #expect(run.output.hasPrefix("usage: deploy/container/build.sh"), "\(run.output)")
  }

  /// Command lines build.sh refuses, each with the start of its error message.
  static let badCommandLines: [([String], String)] = [
    ([], "missing OUT"),
    (["--frobnicate", "out"], "unknown option --frobnicate"),
    (["one", "two"], "one OUT folder only"),
    (["--tag", "a b", "out"], "not a valid image tag"),
    (["--binary"], "--binary needs a value"),
    (["/etc"], "/etc exists and is not an OCI image layout"),
  ]

  @Test(arguments: badCommandLines)
  func badArgumentsFailWithAClearError(arguments: [String], message: String) throws {
    let run = try runTool("/bin/bash", [Self.script] + arguments, seconds: 30)
    #expect(run.status == 1)
    #expect(run.output.contains("build.sh: error: \(message)"), "\(run.output)")
  }
}

/// What the container test needs: root (runc and mmdebstrap's root mode), the three tools,
/// and an image to run: a prebuilt OCI layout in PSTRAIN_CONTAINER_IMAGE, or a pstrain
/// binary with a static Swift standard library in PSTRAIN_CONTAINER_BINARY to build one
/// from (a release build of its own would add minutes: `deploy/local.sh test` passes the
/// release binary it builds anyway).
let canRunContainers: Bool = {
  let environment = ProcessInfo.processInfo.environment
  return getuid() == 0 && tool("mmdebstrap") != nil && tool("umoci") != nil && tool("runc") != nil
    && (environment["PSTRAIN_CONTAINER_IMAGE"] != nil
      || environment["PSTRAIN_CONTAINER_BINARY"] != nil)
}()

/// The image deploy/container/build.sh makes, run with runc: a server and a worker, each in
/// its own container on the host's loopback, train together.
@Suite(
  .serialized,
  .enabled(
    if: canRunContainers,
    "needs root, mmdebstrap, umoci, runc and PSTRAIN_CONTAINER_IMAGE or PSTRAIN_CONTAINER_BINARY"))
struct ContainerImageTests {
  /// A temporary folder for the image, the bundles and the logs.
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-container-\(UUID().uuidString)")

  /// The OCI layout and tag to run: the prebuilt one, or one built now with build.sh.
  func image() throws -> String {
    let environment = ProcessInfo.processInfo.environment
    if let prebuilt = environment["PSTRAIN_CONTAINER_IMAGE"] {
      return prebuilt.contains(":") ? prebuilt : prebuilt + ":latest"
    }
    let layout = directory.appendingPathComponent("image").path
    let binary = try #require(environment["PSTRAIN_CONTAINER_BINARY"])
    // mmdebstrap downloads and installs the Debian root (a few minutes) unless build.sh's
    // cache holds it.
    let built = try runTool(
      "/bin/bash",
      [
        repositoryRoot.appendingPathComponent("deploy/container/build.sh").path,
        "--binary", binary, "--tag", "test", layout,
      ],
      seconds: 900)
    try #require(built.status == 0, "build.sh failed: \(built.output.suffix(2000))")
    return layout + ":test"
  }

  /// Writes a runc bundle at `bundle` that runs `pstrain ARGUMENTS` from the unpacked
  /// `rootfs`, read-only, in the host's network namespace (so the containers and this
  /// test share 127.0.0.1). Returns the image's process user id.
  @discardableResult
  func writeBundle(_ bundle: URL, from unpacked: URL, arguments: [String]) throws -> Int? {
    let configuration = unpacked.appendingPathComponent("config.json")
    var spec = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: configuration)) as? [String: Any])
    var process = try #require(spec["process"] as? [String: Any])
    let user = (process["user"] as? [String: Any])?["uid"] as? Int
    process["args"] = ["pstrain"] + arguments
    process["terminal"] = false
    spec["process"] = process
    spec["root"] = [
      "path": unpacked.appendingPathComponent("rootfs").path, "readonly": true,
    ]
    var linux = try #require(spec["linux"] as? [String: Any])
    let namespaces = try #require(linux["namespaces"] as? [[String: Any]])
    linux["namespaces"] = namespaces.filter { $0["type"] as? String != "network" }
    spec["linux"] = linux
    try FileManager.default.createDirectory(at: bundle, withIntermediateDirectories: true)
    try JSONSerialization.data(withJSONObject: spec, options: [.prettyPrinted])
      .write(to: bundle.appendingPathComponent("config.json"))
    return user
  }

  /// Runs `runc ARGUMENTS`, bounded, and returns its status and output.
  func runc(_ arguments: [String], seconds: Double = 60) throws -> (status: Int32, output: String) {
    try runTool(try #require(tool("runc")), arguments, seconds: seconds)
  }

  /// Kills and deletes container `id` (whatever state it is in; no error if it is gone).
  func remove(_ id: String) {
    _ = try? runc(["kill", id, "KILL"], seconds: 30)
    _ = try? runc(["delete", "--force", id], seconds: 30)
  }

  @Test func aServerAndAWorkerFromTheImageTrainOverLoopback() throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let image = try image()
    let unpacked = directory.appendingPathComponent("unpacked")
    let unpack = try runTool(
      try #require(tool("umoci")), ["unpack", "--image", image, unpacked.path], seconds: 300)
    try #require(unpack.status == 0, "umoci unpack failed: \(unpack.output)")
    // The image's entrypoint is pstrain, its user 10001; the static Swift standard library
    // means the root holds no Swift runtime.
    let rootfs = unpacked.appendingPathComponent("rootfs").path
    #expect(FileManager.default.isExecutableFile(atPath: rootfs + "/usr/local/bin/pstrain"))
    #expect(!FileManager.default.fileExists(atPath: rootfs + "/usr/lib/swift"))

    let suffix = UUID().uuidString.prefix(8).lowercased()
    let serverID = "pstrain-test-server-\(suffix)"
    let workerID = "pstrain-test-worker-\(suffix)"
    let serverBundle = directory.appendingPathComponent("server")
    let user = try writeBundle(
      serverBundle, from: unpacked, arguments: ["server", "--bind", "tcp://127.0.0.1:*"])
    #expect(user == 10001)

    // Detached: runc returns once the server runs; the server keeps runc's stdout, our file.
    let serverLog = directory.appendingPathComponent("server.log")
    defer { remove(serverID) }
    let started = try Subprocess(
      try #require(tool("runc")), ["run", "--detach", "--bundle", serverBundle.path, serverID],
      environment: nil, standardOutput: serverLog.path, standardError: serverLog.path)
    let startedStatus = started.wait(within: 60)
    if startedStatus == nil { started.killAndReap() }
    let serverOutput = { (try? String(contentsOf: serverLog, encoding: .utf8)) ?? "" }
    try #require(startedStatus == 0, "runc run --detach failed: \(serverOutput())")
    var endpoint = ""
    try waitFor("the server's listening line", within: 60) {
      guard
        let line = serverOutput().split(separator: "\n").first(where: {
          $0.hasPrefix("listening ")
        })
      else { return false }
      endpoint = String(line.dropFirst("listening ".count))
      return true
    }
    let before = try serverStatus(endpoint)

    let workerBundle = directory.appendingPathComponent("worker")
    try writeBundle(
      workerBundle, from: unpacked,
      arguments: ["worker", "--connect", endpoint, "--shard", "0/1", "--epochs", "200"])
    defer { remove(workerID) }
    // In the foreground: runc's status is the worker's.
    let worker = try runc(["run", "--bundle", workerBundle.path, workerID], seconds: 300)
    #expect(worker.status == 0, "worker: \(worker.output.suffix(1000))")
    #expect(worker.output.contains("worker 0: done"), "worker: \(worker.output.suffix(1000))")

    let after = try serverStatus(endpoint)
    let versionBefore = before["version"] as? Int ?? -1
    let versionAfter = after["version"] as? Int ?? -1
    #expect(versionBefore == 0)
    // One push per row: 200 epochs of the 2 seed rows.
    #expect(versionAfter == 400, "server version \(versionAfter) after 200 epochs of 2 rows")
    let weights = try #require(after["weights"] as? [Double])
    // loss = 1/2 (product*x - label)^2 on the seed samples, as in ClusterTests.
    let product = weights.reduce(1, *)
    #expect(0.5 * (product + 1) * (product + 1) < 1e-3)

    // SIGTERM stops the server cleanly inside its container.
    _ = try runc(["kill", serverID, "TERM"], seconds: 30)
    try waitFor("the server to stop", within: 30) {
      serverOutput().contains("server: stopped at version")
    }
  }
}
