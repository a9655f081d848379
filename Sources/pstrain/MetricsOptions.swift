import ArgumentParser
import Logging
import Metrics
import MetricsHTTP
import Prometheus
import Roles

/// `--metrics HOST:PORT`: Prometheus text at http://HOST:PORT/metrics, and the
/// Kubernetes probes /healthz and /readyz, for the server, workers and the coordinator alike.
struct MetricsOptions: ParsableArguments {
  @Option(
    help:
      "Serve Prometheus metrics at http://HOST:PORT/metrics, and probes at /healthz and /readyz (port 0 picks a free one)."
  )
  var metrics: String?

  func validate() throws {
    guard let metrics else { return }
    guard Self.hostAndPort(metrics) != nil else {
      throw ValidationError(
        "--metrics needs HOST:PORT with a port 0...65535, e.g. 0.0.0.0:9100, got \"\(metrics)\"")
    }
  }

  /// `HOST:PORT` split at its last colon (HOST may be empty), or nil when PORT is not a
  /// port number 0...65535 (a larger one would wrap around to another port).
  static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
      (0...65535).contains(port)
    else { return nil }
    return (String(text[..<colon]), port)
  }

  /// Bootstraps swift-metrics with a Prometheus registry and starts the endpoint
  /// (nil without `--metrics`); `/readyz` answers from `readiness`, and refused clients
  /// are logged to `logger`. Prints `metrics http://ADDRESS/metrics`.
  func start(readiness: Readiness, logger: Logger) throws -> MetricsHTTPServer? {
    guard let metrics, let (host, port) = Self.hostAndPort(metrics) else { return nil }
    let registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.valueHistogramBuckets["pstrain_gradient_staleness_versions"] = [
      0, 1, 2, 4, 8, 16, 32, 64, 128,
    ]
    factory.durationHistogramBuckets["pstrain_push_round_trip_seconds"] = [
      .microseconds(50), .microseconds(100), .microseconds(200), .microseconds(500),
      .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(50),
      .milliseconds(100), .seconds(1),
    ]
    MetricsSystem.bootstrap(factory)
    let endpoint: MetricsHTTPServer
    do {
      endpoint = try MetricsHTTPServer(
        host: host.isEmpty ? "0.0.0.0" : host, port: port,
        metrics: { MetricsHelp.annotate(registry.emitToBuffer()) },
        readiness: {
          let (ready, reason) = readiness.check()
          return ProbeAnswer(ready: ready, detail: reason)
        },
        log: { logger.info("\($0)") })
    } catch {
      throw Failure(message: error.description)
    }
    print("metrics http://\(endpoint.address)/metrics")
    return endpoint
  }
}
