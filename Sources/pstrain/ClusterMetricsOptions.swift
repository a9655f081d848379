import ArgumentParser

/// `train --metrics HOST:PORT`: every process of the local cluster serves its metrics (and
/// probes), each on its own port counted up from PORT in the order the processes start —
/// the server shards, then the coordinator, then the workers — so that a Prometheus
/// configuration can name them (`deploy/prometheus/prometheus.yml` expects one shard and
/// two workers from port 9100).
struct ClusterMetricsOptions: ParsableArguments {
  @Option(
    help:
      "Serve each process's metrics on HOST from PORT on: server shards first, then the coordinator, then the workers (PORT+1, PORT+2, ...)."
  )
  var metrics: String?

  func validate() throws {
    guard let metrics else { return }
    guard let port = first?.port, (1...65535).contains(port) else {
      throw ValidationError(
        "--metrics needs HOST:PORT with a port 1...65535 (each process takes the next), e.g. 127.0.0.1:9100, got \"\(metrics)\""
      )
    }
  }

  /// The host and first port, when given.
  var first: (host: String, port: Int)? { metrics.flatMap(MetricsOptions.hostAndPort) }
}
