import Foundation
import Testing

/// `pstrain data generate-clicks` and `data describe` on its libsvm output, as a user runs them.
@Suite struct GenerateClicksTests {
  @Test func jsonSummaryThenDescribeAgree() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-clicks-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("train.libsvm").path
    let arguments = [
      "data", "generate-clicks", "--rows", "2000", "--features", "5000", "--seed", "3",
      "--teacher-seed", "4", "--out", path, "--json",
    ]
    let run = try runPstrain(arguments, within: 120)
    #expect(run.status == 0, "\(run.errors)")
    #expect(run.output.split(separator: "\n").count == 1)
    let summary = try lastJSONObject(run.output)
    #expect(summary["rows"] as? Int == 2000)
    #expect(summary["features"] as? Int == 5000)
    let nonzeros = try #require(summary["nonzeros"] as? Int)
    #expect(nonzeros >= 2000 * 30 && nonzeros <= 2000 * 50)
    let auc = try #require(summary["teacher_auc"] as? Double)
    #expect(auc > 0.7 && auc < 0.95)
    let clickRate = try #require(summary["click_rate"] as? Double)
    #expect(clickRate > 0.15 && clickRate < 0.35)
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(text.split(separator: "\n").count == 2000)

    let again = try runPstrain(arguments, within: 120)
    #expect(again.output == run.output)
    #expect(try String(contentsOfFile: path, encoding: .utf8) == text)

    let described = try runPstrain(["data", "describe", path, "--json"], within: 120)
    #expect(described.status == 0, "\(described.errors)")
    let description = try lastJSONObject(described.output)
    #expect(description["format"] as? String == "libsvm")
    #expect(description["rows"] as? Int == 2000)
    #expect(description["nonzeros"] as? Int == nonzeros)
    #expect(description["click_rate"] as? Double == clickRate)
    #expect(description["fingerprint"] as? String == summary["fingerprint"] as? String)
  }

  @Test func badFlagsAndBadLinesAreNamed() throws {
    let cases: [([String], String)] = [
      (
        [
          "data", "generate-clicks", "--rows", "0", "--features", "1000", "--seed", "1", "--out",
          "-",
        ],
        "--rows must be 1...20000000, got 0"
      ),
      (
        [
          "data", "generate-clicks", "--rows", "5", "--features", "10", "--seed", "1", "--out", "-",
        ],
        "--features must be 1000...100000000, got 10"
      ),
      (
        [
          "data", "generate-clicks", "--rows", "5", "--features", "1000", "--seed", "1",
          "--out", "-", "--json",
        ],
        "--json prints the summary on stdout"
      ),
      (["data", "generate-clicks", "--rows", "5", "--features", "1000", "--out", "-"], "--seed"),
    ]
    for (arguments, mention) in cases {
      let run = try runPstrain(arguments, within: 60)
      #expect(run.status != 0, "\(arguments)")
      #expect(run.errors.contains(mention), "\(arguments): \(run.errors)")
    }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "pstrain-\(UUID().uuidString).svm")
    try "1 1:1\n0 2:1 qid:4\n".write(to: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: path) }
    let run = try runPstrain(["data", "describe", path.path], within: 60)
    #expect(run.status != 0)
    #expect(run.errors.contains("line 2: qid"), "\(run.errors)")
    #expect(run.errors.contains("\"qid:4\""), "\(run.errors)")
  }
}
