import ArgumentParser
import Foundation

/// The command line to parse, and where each flag that was not typed came from.
struct ResolvedCommandLine {
  /// The arguments, without the program name.
  var arguments: [String]
  /// For each flag filled in from the environment or the config file (by its name
  /// without dashes), a phrase saying where: "the environment variable PSTRAIN_LR=abc"
  /// or "config file a.conf, line 3 (lr = abc)".
  var origins: [String: String] = [:]
}

/// A config file: `[section]` headers and `key = value` lines; `#` starts a comment.
/// Keys before any header are in `[common]`.
struct ConfigurationFile {
  /// One `key = value` line.
  struct Entry {
    var value: String
    /// 1-based line number in the file.
    var line: Int
  }

  /// The file's path, as given.
  let path: String
  /// Entries by section name, then key.
  private(set) var sections: [String: [String: Entry]] = [:]
  /// The line of each section header, for messages.
  private var sectionLines: [String: Int] = [:]

  /// Reads and parses the file at `path`.
  init(path: String) throws {
    self.path = path
    let text: String
    do {
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw Failure(message: "cannot read config file \(path): \(error.localizedDescription)")
    }
    var section = "common"
    for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
    {
      let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
        .trimmingCharacters(in: .whitespaces)
      if line.isEmpty { continue }
      if line.hasPrefix("[") && line.hasSuffix("]") {
        section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
        sectionLines[section] = sectionLines[section] ?? number + 1
        sections[section] = sections[section] ?? [:]
        continue
      }
      let parts = line.split(separator: "=", maxSplits: 1).map {
        $0.trimmingCharacters(in: .whitespaces)
      }
      guard parts.count == 2, !parts[0].isEmpty else {
        throw Failure(
          message:
            "config file \(path), line \(number + 1): expected key = value or [section], got \"\(line)\""
        )
      }
      sections[section, default: [:]][parts[0]] = Entry(value: parts[1], line: number + 1)
    }
  }

  /// Throws for the first section that names no command and the first key its
  /// section's command does not take (for `[common]`: that no command takes), in
  /// file order, naming the nearest valid name.
  func checkKeys() throws {
    let commands = Self.commandsBySection()
    var everyKey = Set<String>()
    for command in commands.values {
      everyKey.formUnion(LayeredConfiguration.acceptedOptions(of: command).map(\.name))
    }
    let sectionNames = ["common"] + commands.keys.sorted()
    var problems: [(line: Int, message: String)] = []
    for (section, entries) in sections {
      let validKeys: Set<String>
      if section == "common" {
        validKeys = everyKey
      } else if let command = commands[section] {
        validKeys = Set(LayeredConfiguration.acceptedOptions(of: command).map(\.name))
      } else {
        let nearest = Self.nearest(to: section, among: sectionNames)
        problems.append(
          (
            sectionLines[section] ?? entries.values.map(\.line).min() ?? 1,
            "unknown section [\(section)]; did you mean [\(nearest)]? (sections: \(sectionNames.joined(separator: ", ")))"
          ))
        continue
      }
      for (key, entry) in entries where !validKeys.contains(key) {
        let command = section == "common" ? "any command" : "pstrain \(section)"
        problems.append(
          (
            entry.line,
            "unknown key \"\(key)\" in [\(section)] (no flag --\(key) in \(command)); did you mean \"\(Self.nearest(to: key, among: validKeys.sorted()))\"?"
          ))
      }
    }
    guard let first = problems.min(by: { $0.line < $1.line }) else { return }
    throw Failure(message: "config file \(path), line \(first.line): \(first.message)")
  }

  /// Every command and subcommand by its section name (`server`, `data generate`).
  private static func commandsBySection() -> [String: any ParsableCommand.Type] {
    var found: [String: any ParsableCommand.Type] = [:]
    func visit(_ command: any ParsableCommand.Type, path: [String]) {
      for sub in command.configuration.subcommands {
        let name = sub._commandName
        found[(path + [name]).joined(separator: " ")] = sub
        visit(sub, path: path + [name])
      }
    }
    visit(PStrain.self, path: [])
    return found
  }

  /// The name in `candidates` fewest single-character edits away from `word`
  /// (the first such, in order).
  static func nearest(to word: String, among candidates: [String]) -> String {
    candidates.min { editDistance(word, $0) < editDistance(word, $1) } ?? ""
  }

  /// Levenshtein distance: insertions, deletions and substitutions of characters.
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    var previous = Array(0...b.count)
    for (i, ca) in a.enumerated() {
      var current = [i + 1] + Array(repeating: 0, count: b.count)
      for (j, cb) in b.enumerated() {
        current[j + 1] = Swift.min(
          previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
      }
      previous = current
    }
    return previous[b.count]
  }
}
