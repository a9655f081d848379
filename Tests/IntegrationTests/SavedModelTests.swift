import Foundation
import Testing

/// The number after `"key":` in the last line of `output`, read exactly (see `exactNumbers`).
private func exactNumber(_ key: String, in output: String) throws -> Double {
  guard let line = output.split(separator: "\n").last,
    let start = line.range(of: "\"\(key)\":")?.upperBound,
    let end = line[start...].firstIndex(where: { $0 == "," || $0 == "}" }),
    let value = Double(line[start..<end])
  else { throw HarnessError("no number \"\(key)\" at the end of: \(output.suffix(300))") }
  return value
}

/// A path for a file in a fresh temporary directory.
private func temporaryFile(_ name: String) throws -> String {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-saved-model-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  return directory.appendingPathComponent(name).path
}

/// Trains on `data` with `--save-model` and returns the saved file and train's JSON output.
private func trainAndSave(data: String, _ extra: [String] = []) throws -> (
  file: String, output: String
) {
  let file = try temporaryFile("model.psmd")
  let run = try runPstrain(
    ["train", "--data", data, "--epochs", "3", "--json", "--save-model", file] + extra)
  guard run.status == 0 else { throw HarnessError("train failed: \(run.errors.suffix(500))") }
  #expect(run.errors.contains("train: saved the model to \(file)"))
  return (file, run.output)
}

/// Saved models end to end (issue 11, item 7): train keeps the model, predict
/// uses it, the server starts from it.
@Suite(.serialized) struct SavedModelTests {
  /// predict on the training data measures the loss train's summary reported,
  /// bit for bit: the same weights through the same evaluation.
  @Test func predictMeasuresTheLossTrainReported() throws {
    let data = try generateData(rows: 40, seed: 5, noise: 0.1)
    let (file, output) = try trainAndSave(data: data)
    let trained = try exactNumber("loss", in: output)

    let json = try runPstrain(["predict", "--model-file", file, "--data", data, "--json"])
    #expect(json.status == 0, "\(json.errors)")
    #expect(try exactNumber("loss", in: json.output) == trained)
    let object = try lastJSONObject(json.output)
    #expect(object["rows"] as? Int == 40)
    #expect((object["predictions"] as? [Any])?.count == 40)
    #expect(object["accuracy"] is NSNull)
    #expect(object["model"] as? String == "chain(w[3])")

    let text = try runPstrain(["predict", "--model-file", file, "--data", data])
    #expect(text.status == 0, "\(text.errors)")
    let lines = text.output.split(separator: "\n")
    #expect(lines.count == 41)
    #expect(lines.first?.hasPrefix("row 0: ") == true)
    #expect(lines.last == "loss \(trained) (mean over 40 rows)")
  }

  /// Data the model cannot read is refused with the reason; so is a damaged file.
  @Test func predictRefusesDataThatDoesNotFitAndDamagedFiles() throws {
    let data = try generateData(rows: 10, seed: 6, noise: 0)
    let (file, _) = try trainAndSave(data: data)
    let wide = try temporaryFile("wide.csv")
    try "a,b,label\n1,2,3\n4,5,6\n".write(toFile: wide, atomically: true, encoding: .utf8)
    let refused = try runPstrain(["predict", "--model-file", file, "--data", wide])
    #expect(refused.status == 1)
    #expect(refused.errors.contains("has 2 features, the saved model chain takes 1"))

    var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
    bytes[bytes.count / 2] ^= 0x40
    let damaged = try temporaryFile("damaged.psmd")
    try bytes.write(to: URL(fileURLWithPath: damaged))
    let corrupt = try runPstrain(["predict", "--model-file", damaged, "--data", data])
    #expect(corrupt.status == 1)
    #expect(corrupt.errors.contains("checksum mismatch"))
    let show = try runPstrain(["model", "show", file])
    #expect(show.status == 0)
    #expect(show.output.contains("    w [3]"))
  }

  /// `server --init-from` serves the saved weights at version 0, whole or as
  /// shards; model flags that describe another model are refused, naming both.
  @Test func serverInitFromStartsAtTheSavedWeights() throws {
    let data = try generateData(rows: 20, seed: 7, noise: 0.1)
    let (file, _) = try trainAndSave(data: data, ["--layers", "4"])
    let show = try runPstrain(["model", "show", file, "--json"])
    #expect(show.status == 0, "\(show.errors)")
    let saved = try exactNumbers("weights", in: show.output)
    #expect(saved.count == 4)

    let (server, endpoint) = try startServer(["--init-from", file])
    defer { server.stop() }
    let status = try runPstrain(["status", "--connect", endpoint, "--json"], within: 30)
    #expect(status.status == 0, "\(status.errors)")
    #expect(try exactNumbers("weights", in: status.output) == saved)
    #expect(try lastJSONObject(status.output)["version"] as? Int == 0)

    let (first, firstEndpoint) = try startServer(["--init-from", file, "--shard", "0/2"])
    defer { first.stop() }
    let (second, secondEndpoint) = try startServer(["--init-from", file, "--shard", "1/2"])
    defer { second.stop() }
    let sharded = try runPstrain(
      ["status", "--connect", "\(firstEndpoint),\(secondEndpoint)", "--json"], within: 30)
    #expect(sharded.status == 0, "\(sharded.errors)")
    #expect(try exactNumbers("weights", in: sharded.output) == saved)

    let conflict = try runPstrain(
      ["server", "--bind", "tcp://127.0.0.1:*", "--init-from", file, "--layers", "5"], within: 30)
    #expect(conflict.status == 1)
    #expect(
      conflict.errors.contains("holds the model chain(w[4]), but --layers 5 describes chain(w[5])"))
  }

  /// For a classifier, predict's loss is train's and its accuracy is the share
  /// of rows whose predicted class is their label (and train's, when train
  /// reports one).
  @Test func predictMeasuresAClassifiersAccuracy() throws {
    let data = try temporaryFile("classes.csv")
    let generated = try runPstrain([
      "data", "generate", "--rows", "60", "--classes", "3", "--features", "2", "--seed", "4",
      "--out", data,
    ])
    #expect(generated.status == 0, "\(generated.errors)")
    let file = try temporaryFile("softmax.psmd")
    let train = try runPstrain([
      "train", "--model", "softmax", "--data", data, "--epochs", "3", "--json", "--save-model",
      file,
    ])
    #expect(train.status == 0, "\(train.errors.suffix(500))")
    let run = try runPstrain(["predict", "--model-file", file, "--data", data, "--json"])
    #expect(run.status == 0, "\(run.errors)")
    #expect(try exactNumber("loss", in: run.output) == exactNumber("loss", in: train.output))
    let object = try lastJSONObject(run.output)
    let predictions = try #require(object["predictions"] as? [Int])
    let labels = try String(contentsOfFile: data, encoding: .utf8).split(separator: "\n")
      .dropFirst().compactMap { $0.split(separator: ",").last.flatMap { Int($0) } }
    #expect(predictions.count == 60 && labels.count == 60)
    let correct = zip(predictions, labels).filter { $0 == $1 }.count
    // Read exactly: Foundation's JSON parser on Linux can be off by an ulp
    // (0.48333333333333334 came back as 0.4833333333333334).
    let accuracy = try exactNumber("accuracy", in: run.output)
    #expect(accuracy == Double(correct) / 60)
    if train.output.contains("\"accuracy\":") {
      #expect(accuracy == (try exactNumber("accuracy", in: train.output)))
    }
  }
}
