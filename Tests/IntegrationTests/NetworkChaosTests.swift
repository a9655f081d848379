import Foundation
import Testing

/// Runs `command` and returns its exit status (output discarded).
@discardableResult
func shell(_ command: [String]) -> Int32 {
  (try? runTool(command[0], Array(command.dropFirst()), seconds: 60))?.status ?? -1
}

/// Whether this machine lets us make network namespaces and nftables rules (root, iproute2, nft).
let canMakeNamespaces: Bool = {
  guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip"),
    FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft")
  else { return false }
  let probe = "pst-probe-\(getpid())"
  guard shell(["/usr/sbin/ip", "netns", "add", probe]) == 0 else { return false }
  shell(["/usr/sbin/ip", "netns", "del", probe])
  return true
}()

/// Two hosts of our own: a server namespace and a worker namespace joined by a veth
/// pair on a private /24 that exists only between them. Removed on `tearDown`.
struct TestNetwork {
  let server: String
  let workers: String
  let serverAddress: String
  let workerLink: String

  init() throws {
    let tag = String(UInt32.random(in: 0..<0xFFFF), radix: 16)
    server = "pst-s-\(tag)"
    workers = "pst-w-\(tag)"
    let subnet = "10.213.\(Int.random(in: 1..<250))"
    serverAddress = "\(subnet).1"
    workerLink = "pw\(tag)"
    let serverLink = "ps\(tag)"
    let ip = "/usr/sbin/ip"
    let steps: [[String]] = [
      [ip, "netns", "add", server], [ip, "netns", "add", workers],
      [ip, "link", "add", serverLink, "type", "veth", "peer", "name", workerLink],
      [ip, "link", "set", serverLink, "netns", server],
      [ip, "link", "set", workerLink, "netns", workers],
      [ip, "-n", server, "addr", "add", "\(subnet).1/24", "dev", serverLink],
      [ip, "-n", workers, "addr", "add", "\(subnet).2/24", "dev", workerLink],
      [ip, "-n", server, "link", "set", serverLink, "up"],
      [ip, "-n", workers, "link", "set", workerLink, "up"],
      [ip, "-n", server, "link", "set", "lo", "up"],
      [ip, "-n", workers, "link", "set", "lo", "up"],
    ]
    for step in steps where shell(step) != 0 {
      tearDown()
      throw HarnessError("network set-up failed at: \(step.joined(separator: " "))")
    }
  }

  /// Drops `percent`% of the packets each namespace receives (nftables; the kernel has no netem).
  func dropPackets(percent: Int) throws {
    for namespace in [server, workers] {
      let nft = ["/usr/sbin/ip", "netns", "exec", namespace, "/usr/sbin/nft"]
      guard shell(nft + ["add", "table", "inet", "chaos"]) == 0,
        shell(
          nft + [
            "add", "chain", "inet", "chaos", "input", "{ type filter hook input priority 0; }",
          ]) == 0,
        shell(
          nft + [
            "add", "rule", "inet", "chaos", "input", "numgen", "random", "mod", "100", "<",
            "\(percent)", "drop",
          ]) == 0
      else { throw HarnessError("nftables rules failed in \(namespace)") }
    }
  }

  /// Takes the workers' link down or up.
  func setWorkerLink(up: Bool) {
    shell(["/usr/sbin/ip", "-n", workers, "link", "set", workerLink, up ? "up" : "down"])
  }

  func tearDown() {
    shell(["/usr/sbin/ip", "netns", "del", server])
    shell(["/usr/sbin/ip", "netns", "del", workers])
  }
}

@Suite(.serialized, .enabled(if: canMakeNamespaces, "needs root, iproute2 and nftables"))
struct NetworkChaosTests {
  @Test func trainingFinishesThroughPacketLossAndALinkCut() throws {
    let network = try TestNetwork()
    defer { network.tearDown() }
    let rows = 40
    let epochs = 10
    let data = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-net-\(UUID().uuidString).csv"
    ).path
    #expect(
      try runPstrain(["data", "generate", "--rows", "\(rows)", "--seed", "9", "--out", data]).status
        == 0)
    let endpoint = "tcp://\(network.serverAddress):5555"
    let server = try Launched(
      [
        "server", "--bind", endpoint, "--epochs", "\(epochs)", "--chunk-rows", "4",
        "--dead-after-ms", "20000", "--stay",
      ], inNamespace: network.server)
    defer { server.stop() }
    _ = try server.line(startingWith: "listening ")
    try network.dropPackets(percent: 5)
    let workers = try (0..<2).map { index in
      try Launched(
        [
          "worker", "--connect", endpoint, "--data", data, "--id", "\(index)", "--heartbeat-ms",
          "300",
          "--timeout-ms", "30000", "--reply-timeout-ms", "90000",
        ], inNamespace: network.workers)
    }
    defer { for worker in workers { worker.stop() } }
    func applied() throws -> Int {
      let run = try runPstrain(
        ["status", "--connect", endpoint, "--json", "--timeout-ms", "5000"],
        inNamespace: network.workers, within: 30)
      guard run.status == 0 else { return -1 }
      return try lastJSONObject(run.output)["gradients_applied"] as? Int ?? -1
    }
    // Cut the link once training is under way, for two seconds.
    let deadline = Date().addingTimeInterval(60)
    while try applied() < 50 && Date() < deadline { usleep(100_000) }
    network.setWorkerLink(up: false)
    usleep(2_000_000)
    network.setWorkerLink(up: true)
    for worker in workers {
      #expect(try worker.wait(within: 180) == 0, "\(worker.errors.suffix(300))")
    }
    let status = try runPstrain(
      ["status", "--connect", endpoint, "--json"], inNamespace: network.workers, within: 60)
    let final = try lastJSONObject(status.output)
    #expect(final["epoch"] as? Int == epochs)
    // Lost packets and resent pushes, yet every row counted exactly once per epoch.
    #expect(final["gradients_applied"] as? Int == rows * epochs)
    #expect(try server.terminate() == 0)
  }
}
