/// `# HELP` lines for pstrain's metrics. swift-metrics has no help text and swift-prometheus
/// writes none for metrics made through it, so each scrape gets them added here: Prometheus
/// shows them, and `promtool check metrics` requires them.
enum MetricsHelp {
  /// One line per metric family.
  static let texts: [String: String] = [
    "pstrain_version":
      "Version of the server's parameters (gradients applied or rounds completed).",
    "pstrain_workers_live": "Workers joined to the server and not yet declared dead.",
    "pstrain_gradients_applied_total": "Gradients the server applied.",
    "pstrain_samples_applied_total":
      "Dataset rows in the gradients the server applied since it started (each server shard counts every row).",
    "pstrain_pushes_rejected_total": "Pushes the server refused, by reason.",
    "pstrain_gradient_staleness_versions":
      "Versions between the weights a gradient was computed at and the server's when applied.",
    "pstrain_test_loss":
      "Mean loss on the held-out data at the coordinator's latest evaluation (coordinator --test-data).",
    "pstrain_test_accuracy":
      "Fraction of the held-out data classified right at the coordinator's latest evaluation (classifiers).",
    "pstrain_test_auc":
      "Area under the ROC curve on the held-out data at the coordinator's latest evaluation (sparse models).",
    "pstrain_keyed_rows":
      "Rows of the sparse model's keyed table created so far (keys some push touched).",
    "pstrain_keyed_bytes_allocated":
      "Bytes the sparse model's keyed table has allocated (index and spare capacity included).",
    "pstrain_sparse_bytes_total":
      "Bytes of sparse messages the server received or sent, by direction.",
    "pstrain_checkpoint_failures_total": "Checkpoints the server failed to write.",
    "pstrain_checkpoint_last_success_version": "Version of the newest durable checkpoint.",
    "pstrain_checkpoint_last_success_timestamp_seconds":
      "Unix time at which the newest durable checkpoint was written.",
    "pstrain_quarantined_workers":
      "Workers the server quarantined after a confirmed failed audit (server --quarantine).",
    "pstrain_rollbacks_total": "Times the server rolled its parameters back to a snapshot.",
    "pstrain_versions_rolled_back_total": "Versions undone by the server's rollbacks, in total.",
    "pstrain_pushes_total": "Gradients this worker pushed.",
    "pstrain_push_round_trip_seconds": "Time from a worker's push to the server's answer.",
    "pstrain_train_loss":
      "Mean loss of this worker's batches over about the last second (at the weights each was computed at).",
    "pstrain_audits_total": "Gradients the coordinator audited, by result.",
    "pstrain_audit_last_relative_error":
      "Largest relative error of the last audit against finite differences.",
    "pstrain_audit_max_relative_error": "Largest relative error of any audit so far.",
  ]

  /// `text` (Prometheus text format) with a `# HELP` line before each `# TYPE` line
  /// of a metric in `texts`.
  static func annotate(_ text: [UInt8]) -> [UInt8] {
    var annotated: [UInt8] = []
    annotated.reserveCapacity(text.count + texts.count * 100)
    for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
      if line.starts(with: "# TYPE ".utf8) {
        let name = String(
          decoding: line.dropFirst(7).prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
        if let help = texts[name] { annotated += Array("# HELP \(name) \(help)\n".utf8) }
      }
      annotated += line
      annotated.append(UInt8(ascii: "\n"))
    }
    annotated.removeLast()  // split gave one more piece than there were newlines
    return annotated
  }
}
