import Foundation
import Testing

/// A real Prometheus scrapes a real run (a server, two workers and a coordinator), and every
/// query of the Grafana dashboard `deploy/grafana/pstrain.json` returns data; every role's
/// `/metrics` passes `promtool check metrics`, and `deploy/prometheus/prometheus.yml` passes
/// `promtool check config`.
@Suite(
  .enabled(
    if: tool("prometheus") != nil && tool("promtool") != nil
      && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"),
    "needs prometheus and promtool (Debian package prometheus) and curl"))
struct PrometheusTests {
  /// The dashboard every query of which must return data.
  static let dashboard = repositoryRoot.appendingPathComponent("deploy/grafana/pstrain.json")

  @Test func prometheusScrapesARunAndEveryDashboardQueryHasData() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-prometheus-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let run = try MonitoredRun(directory: directory)
    defer { run.stop() }
    let example = repositoryRoot.appendingPathComponent("deploy/prometheus/prometheus.yml").path
    let config = try runTool(
      try #require(tool("promtool")), ["check", "config", example], seconds: 30)
    #expect(config.status == 0, "promtool check config \(example): \(config.output)")

    let prometheus = try PrometheusProcess(targets: run.targets, directory: directory)
    defer { prometheus.stop() }
    do {
      // Live values through Prometheus: every target up, the server's version moving,
      // both workers joined.
      try prometheus.waitForData(
        "all four targets up", query: "count(up{job=\"pstrain\"} == 1)", where: "== 4")
      try prometheus.waitForData(
        "the server's version", query: "pstrain_version{role=\"server\"}", where: "> 0")
      try prometheus.waitForData(
        "two live workers", query: "pstrain_workers_live{role=\"server\"}", where: "== 2")
      try prometheus.waitForData(
        "a loss from each worker", query: "count(pstrain_train_loss{role=\"worker\"})",
        where: "== 2")
      try prometheus.waitForData(
        "a passed audit", query: "pstrain_audits_total{role=\"coordinator\",result=\"passed\"}",
        where: "> 0")
      // Every reason from the start, though nothing was refused.
      let reasons = try prometheus.query("pstrain_pushes_rejected_total{role=\"server\"}")
      #expect(reasons.count >= 16, "\(reasons)")

      // The dashboard: its variables' label_values queries and every panel's expression.
      let queries = try DashboardQueries(file: Self.dashboard)
      #expect(queries.expressions.count >= 15, "\(queries.expressions)")
      for (name, query) in queries.variables {
        let answer = try prometheus.query(query)
        #expect(!answer.isEmpty, "variable $\(name): \(query) returned nothing")
        if name == "role" {
          let roles = Set(answer.compactMap { ($0["metric"] as? [String: String])?["role"] })
          #expect(roles == ["server", "worker", "coordinator"], "\(answer)")
        }
      }
      let empty = try prometheus.waitForEvery(queries.expressions, within: 90)
      #expect(
        empty.isEmpty, "dashboard expressions with no data:\n\(empty.joined(separator: "\n"))")

      let metrics = MetricsTests()
      // promtool's linter on what each role serves, with no warning.
      for (role, url) in run.targets {
        let text = try metrics.get("http://\(url)/metrics").body
        let file = directory.appendingPathComponent(
          "\(role.replacingOccurrences(of: " ", with: "-")).txt")
        try text.write(to: file, atomically: true, encoding: .utf8)
        let checked = try runTool(
          "/bin/sh",
          ["-c", "\"$0\" check metrics < \"$1\"", try #require(tool("promtool")), file.path],
          seconds: 30)
        #expect(
          checked.status == 0 && checked.output.isEmpty,
          "promtool check metrics on the \(role): \(checked.output)\n\(text.prefix(1500))")
      }
    } catch {
      Issue.record("\(error)\nprometheus: \(prometheus.log.suffix(1500))\n\(run.describe())")
    }
  }
}

/// A small dense run to scrape: a softmax classifier on generated data, a server with
/// `--quarantine` and checkpoints, two workers and a coordinator that audits and evaluates
/// held-out data often; every role serves metrics on a free loopback port.
struct MonitoredRun {
  /// Each process, named by role ("server", "worker 0", ...).
  let processes: [(role: String, process: Launched)]
  /// The `HOST:PORT` of each role's metrics endpoint.
  let targets: [(role: String, address: String)]

  /// Starts the run, its files in `directory`.
  init(directory: URL) throws {
    let data = directory.appendingPathComponent("data.csv").path
    let generated = try runPstrain([
      "data", "generate", "--rows", "300", "--seed", "3", "--classes", "3", "--features", "4",
      "--out", data,
    ])
    guard generated.status == 0 else { throw HarnessError("data generate: \(generated.errors)") }
    var started: [(String, Launched)] = []
    do {
      let (server, endpoint) = try startServer([
        "--model", "softmax", "--features", "4", "--classes", "3", "--lr", "0.05", "--quarantine",
        "--checkpoint-dir", directory.appendingPathComponent("checkpoints").path,
        "--checkpoint-every", "200", "--metrics", "127.0.0.1:0",
      ])
      started.append(("server", server))
      for index in 0..<2 {
        started.append(
          (
            "worker \(index)",
            try Launched([
              "worker", "--connect", endpoint, "--shard", "\(index)/2", "--data", data,
              "--batch-size", "4", "--epochs", "1000000", "--metrics", "127.0.0.1:0",
            ])
          ))
      }
      started.append(
        (
          "coordinator",
          try Launched([
            "coordinator", "--connect", endpoint, "--every", "20", "--data", data,
            "--test-data", data, "--eval-every", "20", "--metrics", "127.0.0.1:0",
          ])
        ))
      processes = started
      targets = try started.map { role, process in
        let url = try process.line(startingWith: "metrics http://")
        return (role, String(url.dropFirst("metrics http://".count).dropLast("/metrics".count)))
      }
    } catch {
      for (_, process) in started { process.stop() }
      throw error
    }
  }

  /// Stops every process.
  func stop() { for (_, process) in processes { process.stop() } }

  /// The end of each process's output, for a failure message.
  func describe() -> String {
    processes.map { role, process in
      "\(role): \(process.output.suffix(300)) \(process.errors.suffix(300))"
    }.joined(separator: "\n")
  }
}

/// A Prometheus server on a free loopback port scraping `targets` every second, one
/// static target per role, labelled `job="pstrain"` and `role` (server, worker,
/// coordinator), with `honor_labels`.
final class PrometheusProcess {
  private let process: Subprocess
  /// Its `HOST:PORT`.
  let address: String
  private let logFile: String

  /// Writes the configuration into `directory` and starts Prometheus, waiting (bounded) until
  /// `/-/ready` answers 200. Prometheus cannot be given port 0 and does not say which port
  /// it bound, so the port is one that was free a moment before: if another process took it
  /// meanwhile, Prometheus exits saying so, and it is started again on another (three tries).
  init(targets: [(role: String, address: String)], directory: URL) throws {
    let configuration = directory.appendingPathComponent("prometheus.yml")
    let groups = targets.map { role, address in
      """
            - targets: ["\(address)"]
              labels: {role: "\(role.split(separator: " ")[0])"}
      """
    }
    try """
    global:
      scrape_interval: 1s
      evaluation_interval: 1s
    scrape_configs:
      - job_name: pstrain
        honor_labels: true
        static_configs:
    \(groups.joined(separator: "\n"))
    """.write(to: configuration, atomically: true, encoding: .utf8)
    guard let executable = tool("prometheus") else { throw HarnessError("no prometheus on PATH") }
    logFile = directory.appendingPathComponent("prometheus.log").path
    for attempt in 1...3 {
      let address = "127.0.0.1:\(try freeLoopbackPort())"
      let process = try Subprocess(
        executable,
        [
          "--config.file=\(configuration.path)",
          "--storage.tsdb.path=\(directory.path)/tsdb-\(attempt)",
          "--web.listen-address=\(address)",
        ], standardOutput: logFile, standardError: logFile)
      let deadline = Date().addingTimeInterval(60)
      while process.isRunning && Date() < deadline {
        let ready = try? runTool(
          "/usr/bin/curl",
          [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
            "http://\(address)/-/ready",
          ],
          seconds: 10)
        if ready?.output == "200" {
          self.process = process
          self.address = address
          return
        }
        usleep(100_000)
      }
      process.killAndReap()
      let said = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
      guard said.contains("address already in use") else {
        throw HarnessError(
          "timed out after 60 s waiting for Prometheus's /-/ready on \(address), or it exited: \(said.suffix(1500))"
        )
      }
    }
    throw HarnessError("Prometheus found its port taken three times in a row")
  }

  /// What Prometheus has logged.
  var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

  /// Stops Prometheus.
  func stop() { process.killAndReap() }

  /// The instant vector `expression` evaluates to now (`/api/v1/query`): one dictionary
  /// per series, with `metric` and `value`. A query Prometheus refuses throws.
  func query(_ expression: String) throws -> [[String: Any]] {
    let answer = try runTool(
      "/usr/bin/curl",
      [
        "-s", "--max-time", "5", "-G", "http://\(address)/api/v1/query", "--data-urlencode",
        "query=\(expression)",
      ], seconds: 30
    ).output
    guard let object = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any],
      object["status"] as? String == "success",
      let data = object["data"] as? [String: Any]
    else { throw HarnessError("Prometheus refused \(expression): \(answer.prefix(500))") }
    // A scalar answer is one value, not a list of series.
    return data["result"] as? [[String: Any]] ?? [["value": data["result"] ?? 0]]
  }

  /// Polls `expression` `where` a condition holds (e.g. `== 2`) every 250 ms until it returns
  /// a series, for at most `seconds` (a bound for a loaded machine: it takes seconds); on
  /// timeout the error shows what `expression` alone gave.
  func waitForData(
    _ what: String, query expression: String, where condition: String = "",
    within seconds: Double = 60
  ) throws {
    do {
      try waitFor("\(what) (\(expression) \(condition)) in Prometheus", within: seconds) {
        usleep(200_000)
        return !(try query("\(expression) \(condition)").isEmpty)
      }
    } catch {
      throw HarnessError("\(error); \(expression) is \(try query(expression))")
    }
  }

  /// Polls each of `expressions` (once a second) until every one has returned a series,
  /// for at most `seconds`; returns those that never did. One Prometheus refuses throws.
  func waitForEvery(_ expressions: [String], within seconds: Double) throws -> [String] {
    var waiting = expressions
    let deadline = Date().addingTimeInterval(seconds)
    while !waiting.isEmpty && Date() < deadline {
      waiting = try waiting.filter { try query($0).isEmpty }
      if !waiting.isEmpty { usleep(1_000_000) }
    }
    return waiting
  }
}

/// The queries of a Grafana dashboard, ready for Prometheus's API: every panel's `expr`
/// and every query variable's `label_values(SELECTOR, LABEL)` (as `count by (LABEL) (SELECTOR)`),
/// with the variables substituted as the dashboard's "All" would: `$job`, `$role` and
/// `$instance` as `.*`, `$__rate_interval` as 5s (four 1 s scrape intervals, as Grafana
/// takes it).
struct DashboardQueries {
  /// Every panel's expression, substituted.
  let expressions: [String]
  /// Each query variable's name and query, substituted.
  let variables: [(name: String, query: String)]

  /// Reads the dashboard at `file`; throws when it is not a dashboard with a Prometheus
  /// data source variable, or an expression names a variable it does not substitute.
  init(file: URL) throws {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: file))
    guard let dashboard = object as? [String: Any],
      let templating = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]],
      templating.contains(where: {
        $0["type"] as? String == "datasource" && $0["query"] as? String == "prometheus"
      })
    else { throw HarnessError("\(file.path) has no Prometheus data source variable") }
    func substituted(_ expression: String) throws -> String {
      var text = expression.replacingOccurrences(of: "$__rate_interval", with: "5s")
      for name in ["job", "role", "instance"] {
        text = text.replacingOccurrences(of: "$\(name)", with: ".*")
      }
      guard !text.contains("$") else {
        throw HarnessError("\(expression) names a variable the test does not substitute")
      }
      return text
    }
    var found: [String] = []
    func collect(_ value: Any) {
      if let object = value as? [String: Any] {
        if let expression = object["expr"] as? String { found.append(expression) }
        object.values.forEach(collect)
      } else if let array = value as? [Any] {
        array.forEach(collect)
      }
    }
    collect(dashboard["panels"] ?? [])
    expressions = try found.map(substituted)
    variables = try templating.filter { $0["type"] as? String == "query" }.map { variable in
      let name = variable["name"] as? String ?? "?"
      guard let query = variable["query"] as? String, query.hasPrefix("label_values("),
        let comma = query.lastIndex(of: ",")
      else { throw HarnessError("variable \(name): not a label_values query: \(variable)") }
      let selector = query[query.index(query.startIndex, offsetBy: 13)..<comma]
      let label = query[query.index(after: comma)...].dropLast().trimmingCharacters(
        in: .whitespaces)
      return (name, try substituted("count by (\(label)) (\(selector))"))
    }
  }
}
