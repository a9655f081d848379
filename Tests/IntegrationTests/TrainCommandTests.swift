import Foundation
import Testing

/// The processes whose parent is `pid`, from /proc.
private func children(of pid: pid_t) -> [pid_t] {
  let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
  return names.compactMap { name -> pid_t? in
    guard let child = pid_t(name), let stat = processStat(child) else { return nil }
    return stat.parent == pid ? child : nil
  }
}

/// State letter and parent pid from /proc/PID/stat, or nil once the process is gone.
private func processStat(_ pid: pid_t) -> (state: Character, parent: pid_t)? {
  guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
    let close = text.lastIndex(of: ")")
  else { return nil }
  // "PID (COMM) STATE PPID ...": COMM may hold spaces, so read after its ')'.
  let fields = text[text.index(after: close)...].split(separator: " ")
  guard fields.count >= 2, let state = fields[0].first, let parent = pid_t(fields[1]) else {
    return nil
  }
  return (state, parent)
}

/// Gone: no such process, or a zombie waiting to be reaped by whoever adopted it.
private func isGone(_ pid: pid_t) -> Bool {
  guard let stat = processStat(pid) else { return true }
  return stat.state == "Z" || stat.state == "X"
}

/// Waits (bounded) until `train` has started its server, coordinator and `workers`
/// workers and reported progress past version 0; returns their pids.
private func clusterOf(_ train: pid_t, workers: Int, progressIn file: URL) throws -> [pid_t] {
  var pids: [pid_t] = []
  try waitFor("train's \(workers + 2) children and a progress line", within: 60) {
    pids = children(of: train)
    let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
    // A version above 0: the workers are training.
    let training = text.split(separator: "\n").contains {
      $0.hasPrefix("train: version ") && !$0.hasPrefix("train: version 0,")
    }
    return pids.count == workers + 2 && training
  }
  return pids
}

/// `pstrain train` and the cluster it runs, seen from outside (issue 9, items 5 to 7 and 10).
@Suite(.serialized) struct TrainCommandTests {
  /// kill -9 of `train` leaves no orphan: server, coordinator and workers go with it.
  @Test func killingTrainKillsItsWholeCluster() throws {
    let train = try Launched(["train", "--epochs", "100000000", "--json"])
    defer { train.stop() }
    let cluster = try clusterOf(train.process.pid, workers: 2, progressIn: train.errorURL)
    // Whatever happens below, end what this test started.
    defer { for pid in cluster where !isGone(pid) { kill(pid, SIGKILL) } }
    train.process.send(SIGKILL)
    #expect(train.process.wait(within: 30) == 128 + SIGKILL)
    var left: [pid_t] = cluster
    try? waitFor("the cluster to die with train", within: 20) {
      left = cluster.filter { !isGone($0) }
      return left.isEmpty
    }
    #expect(left.isEmpty, "still running after train was killed: \(left)")
  }

  /// Ctrl-C at a terminal: SIGINT to the whole foreground process group. train stops
  /// its cluster, prints what was reached and exits 130; no child is left.
  @Test func ctrlCStopsTheClusterAndSummarisesWhatWasReached() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-ctrl-c-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let output = folder.appendingPathComponent("stdout")
    let errors = folder.appendingPathComponent("stderr")
    // setsid makes train lead its own process group, as a shell does for a foreground job
    // (it execs in place: the pid is train's).
    let train = try Subprocess(
      "/usr/bin/setsid", [try pstrainBinary(), "train", "--epochs", "100000000", "--json"],
      standardOutput: output.path, standardError: errors.path)
    defer { train.killAndReap() }
    let cluster = try clusterOf(train.pid, workers: 2, progressIn: errors)
    defer { for pid in cluster where !isGone(pid) { kill(pid, SIGKILL) } }
    kill(-train.pid, SIGINT)
    let status = train.wait(within: 30)
    let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    #expect(status == 130, "stderr: \((try? String(contentsOf: errors, encoding: .utf8)) ?? "")")
    let summary = try lastJSONObject(text)
    #expect(summary["interrupted"] as? Bool == true)
    #expect(summary["diverged"] as? Bool == false)
    #expect((summary["updates"] as? Int ?? 0) > 0)
    #expect((summary["weights"] as? [Double])?.count == 3)
    #expect((summary["loss"] as? Double ?? .infinity) < 0.53)  // below the initial loss
    // Whether an audit finished before the signal depends on timing; that they are reported does not.
    #expect((summary["audits"] as? [String: Any])?["count"] is Int)
    var left: [pid_t] = cluster
    try? waitFor("the cluster to stop", within: 10) {
      left = cluster.filter { !isGone($0) }
      return left.isEmpty
    }
    #expect(left.isEmpty, "still running after train exited: \(left)")
  }

  /// SIGTERM to train alone does the same, with a shell's 143.
  @Test func sigtermStopsTheClusterToo() throws {
    let train = try Launched(["train", "--epochs", "100000000", "--json"])
    defer { train.stop() }
    let cluster = try clusterOf(train.process.pid, workers: 2, progressIn: train.errorURL)
    defer { for pid in cluster where !isGone(pid) { kill(pid, SIGKILL) } }
    #expect(try train.terminate(SIGTERM) == 128 + SIGTERM, "\(train.errors)")
    #expect(try lastJSONObject(train.output)["interrupted"] as? Bool == true)
    var left: [pid_t] = cluster
    try? waitFor("the cluster to stop", within: 10) {
      left = cluster.filter { !isGone($0) }
      return left.isEmpty
    }
    #expect(left.isEmpty, "still running after train exited: \(left)")
  }

  /// A 1000-layer chain at lr 0.05 diverges at the first step: one line says so and
  /// what to try, --json says diverged, exit 3.
  @Test func divergenceStopsTheRunWithOneLineAndARateToTry() throws {
    let run = try runPstrain([
      "train", "--layers", "1000", "--lr", "0.05", "--epochs", "50", "--json",
    ])
    #expect(run.status == 3, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    #expect(summary["diverged"] as? Bool == true)
    #expect(summary["ok"] as? Bool == false)
    #expect((summary["problems"] as? [Any])?.isEmpty == true)
    let line = try #require(summary["divergence"] as? String)
    #expect(line.hasPrefix("training diverged at version "))
    #expect(line.hasSuffix("for a chain of 1000 layers try --lr 0.0005 or lower"), "\(line)")
    let errorLines = run.errors.split(separator: "\n").filter { !$0.hasPrefix("train: ") }
    #expect(errorLines == ["pstrain: \(line)"])
    // What the summary shows was measured: an infinite loss predicts nothing.
    #expect(summary["loss"] is NSNull || (summary["loss"] as? Double ?? 0) > 1e5)
  }

  @Test func anOverflowingRateDivergesOnThreeLayersToo() throws {
    let run = try runPstrain(["train", "--lr", "1e308", "--epochs", "20", "--json"])
    #expect(run.status == 3, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    #expect(summary["diverged"] as? Bool == true)
    let line = try #require(summary["divergence"] as? String)
    #expect(line.contains("the loss became infinite"), "\(line)")
    #expect(line.hasSuffix("for a chain of 3 layers try --lr 0.1 or lower"), "\(line)")
  }

  /// The default rate follows the depth: a 1000-layer chain trains without --lr.
  @Test func aDeepChainTrainsAtTheDefaultRate() throws {
    let run = try runPstrain(["train", "--layers", "1000", "--epochs", "20", "--json"])
    #expect(run.status == 0, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    #expect(summary["lr"] as? Double == 0.0005)
    #expect(summary["diverged"] as? Bool == false)
    #expect((summary["loss"] as? Double ?? 1) < 0.125)  // below where it started
  }

  /// The predictions are rows of the data with their labels, not sign(e) at ±1.
  @Test func predictionsAreMeasuredOnTheData() throws {
    let data = try generateData(rows: 40, seed: 5, noise: 0)
    let csv = try String(contentsOfFile: data, encoding: .utf8).split(separator: "\n")
    let run = try runPstrain(["train", "--data", data, "--epochs", "30", "--json"])
    #expect(run.status == 0, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    let rows = try #require(summary["predictions"] as? [[String: Any]])
    #expect(rows.map { $0["row"] as? Int } == [0, 20, 39])
    for row in rows {
      let index = try #require(row["row"] as? Int)
      let fields = csv[index + 1].split(separator: ",")  // after the header
      // Foundation's JSON parser can be an ulp off (see exactNumbers): compare closely.
      let x = try #require(row["x"] as? Double)
      let label = try #require(row["label"] as? Double)
      #expect(abs(x - Double(fields[0])!) <= 1e-15)
      #expect(abs(label - Double(fields[1])!) <= 1e-15)
      let prediction = try #require(row["prediction"] as? Double)
      let largest = try #require(summary["largest_error"] as? Double)
      #expect(abs(prediction - label) <= largest * (1 + 1e-6))
      #expect(largest < 0.1)  // 30 epochs on noiseless data: e is close to every label
    }
  }

  /// A run too short to be audited is not a failure; the warning says why.
  @Test func aShortRunWarnsInsteadOfFailing() throws {
    let run = try runPstrain(["train", "--epochs", "1", "--json"])
    #expect(run.status == 0, "\(run.errors)")
    let summary = try lastJSONObject(run.output)
    #expect(summary["ok"] as? Bool == true)
    let warnings = try #require(summary["warnings"] as? [String])
    #expect(warnings.count == 1)
    #expect(warnings.first?.contains("no gradient was audited") == true)
  }

  /// Cut weights say that they are cut, and how many there are.
  @Test func theTextSummarySaysWhenWeightsAreCut() throws {
    let run = try runPstrain(["train", "--layers", "20", "--epochs", "2"])
    #expect(run.status == 0, "\(run.errors)")
    let line = try #require(run.output.split(separator: "\n").first { $0.contains("weights ") })
    #expect(line.hasSuffix(", ... (8 of 20 weights shown; --json lists all)"), "\(line)")
  }
}

/// `--plot` samples the loss by version: at least every 1% of the run (issue 9, item 10).
@Suite(.serialized) struct LossCurveTests {
  @Test func theLossCurveHasAPointAtLeastEveryPercentOfTheRun() throws {
    let svg = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-curve-\(UUID().uuidString).svg"
    ).path
    defer { try? FileManager.default.removeItem(atPath: svg) }
    let run = try runPstrain(["train", "--plot", svg, "--json"])
    #expect(run.status == 0, "\(run.errors)")
    let updates = Double(try #require(try lastJSONObject(run.output)["updates"] as? Int))
    #expect(updates == 1000)
    // The first polyline is the loss panel's: "x,y x,y ...", x = left + width * version / max.
    let text = try String(contentsOfFile: svg, encoding: .utf8)
    let start = try #require(text.range(of: "<polyline points=\"")).upperBound
    let end = try #require(text[start...].firstIndex(of: "\""))
    let xs = text[start..<end].split(separator: " ").compactMap {
      Double($0.split(separator: ",")[0])
    }
    #expect(xs.count >= 100, "\(xs.count) points")
    let (left, width) = (80.0, 760.0 - 80 - 24)  // TrainingPlot's margins
    #expect(xs.first == left)
    #expect(abs((xs.last ?? 0) - (left + width)) < 1e-9)
    let widestGap = zip(xs, xs.dropFirst()).map { $1 - $0 }.max() ?? .infinity
    #expect(widestGap <= width / 100 + 1e-9, "a gap of \(widestGap / width * 100)% of the run")
  }
}
