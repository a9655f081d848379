import ArgumentParser
import Foundation

/// Settings from three places, with one set of names. For a flag `--dead-after-ms`:
///
/// 1. the command line: `--dead-after-ms 5000`
/// 2. the environment: `PSTRAIN_SERVER_DEAD_AFTER_MS=5000` for that command only, else
///    `PSTRAIN_DEAD_AFTER_MS=5000` for every command that has the flag
/// 3. a config file (`--config FILE` or `PSTRAIN_CONFIG=FILE`): `dead-after-ms = 5000`,
///    in a `[server]` section (or whichever command it is for), or in `[common]`,
///    which applies to every command; a command's own section wins over `[common]`
///
/// The first place that sets a flag wins; a flag set nowhere keeps its default.
/// Boolean flags take `true` or `false`. Only flags the command accepts are filled in,
/// so one file and one environment can serve every role.
enum LayeredConfiguration {
  /// This process's arguments completed from its environment and config file.
  static func resolveCommandLine() throws -> [String] {
    try resolve(
      Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
  }

  /// `arguments` (without the program name) completed from the environment and
  /// the config file.
  static func resolve(_ arguments: [String], environment: [String: String]) throws -> [String] {
    var remaining = arguments
    let configPath = takeConfigFlag(&remaining) ?? environment["PSTRAIN_CONFIG"]
    guard let (command, path) = commandPath(remaining) else { return remaining }
    if remaining.contains(where: { $0 == "--help" || $0 == "-h" || $0 == "--version" }) {
      return remaining
    }
    let file = try configPath.map { try parse(file: $0) } ?? [:]
    let sectionName = path.joined(separator: " ")
    var added: [String] = []
    for option in acceptedOptions(of: command) {
      if remaining.contains(where: { $0 == "--\(option.name)" || $0.hasPrefix("--\(option.name)=") }
      ) {
        continue
      }
      let flag = option.name.uppercased().replacingOccurrences(of: "-", with: "_")
      let command = path.joined(separator: "_").uppercased()
      let value =
        environment["PSTRAIN_\(command)_\(flag)"] ?? environment["PSTRAIN_\(flag)"]
        ?? file[sectionName]?[option.name] ?? file["common"]?[option.name]
      guard let value else { continue }
      if option.takesValue {
        added += ["--\(option.name)", value]
      } else {
        switch value.lowercased() {
        case "true", "yes", "1": added.append("--\(option.name)")
        case "false", "no", "0": break
        default:
          throw Failure(
            message: "\(option.name) is a flag: set it to true or false, not \"\(value)\"")
        }
      }
    }
    // Options go right after the command's name, before any positional arguments.
    return Array(remaining.prefix(path.count)) + added + remaining.dropFirst(path.count)
  }

  /// Removes `--config FILE` / `--config=FILE` from `arguments` and returns the file.
  private static func takeConfigFlag(_ arguments: inout [String]) -> String? {
    if let index = arguments.firstIndex(of: "--config"), index + 1 < arguments.count {
      let value = arguments[index + 1]
      arguments.removeSubrange(index...(index + 1))
      return value
    }
    if let index = arguments.firstIndex(where: { $0.hasPrefix("--config=") }) {
      let value = String(arguments[index].dropFirst("--config=".count))
      arguments.remove(at: index)
      return value
    }
    return nil
  }

  /// The subcommand named by the leading words of `arguments`, and those words.
  private static func commandPath(_ arguments: [String]) -> (any ParsableCommand.Type, [String])? {
    var command: any ParsableCommand.Type = PStrain.self
    var path: [String] = []
    for word in arguments {
      guard
        let next = command.configuration.subcommands.first(where: {
          $0.configuration.commandName == word
        })
      else { break }
      command = next
      path.append(word)
    }
    return path.isEmpty ? nil : (command, path)
  }

  private struct Option {
    var name: String
    var takesValue: Bool
  }

  /// The long options `command` accepts, read from its help text.
  private static func acceptedOptions(of command: any ParsableCommand.Type) -> [Option] {
    let help = PStrain.helpMessage(for: command, columns: 10_000)
    var options: [String: Option] = [:]
    for line in help.split(separator: "\n") {
      let trimmed = line.drop(while: { $0 == " " })
      guard trimmed.hasPrefix("--") else { continue }
      let words = trimmed.split(separator: " ", maxSplits: 2)
      let name = String(words[0].dropFirst(2))
      guard !["help", "version", "config", "generate-completion-script"].contains(name) else {
        continue
      }
      options[name] = Option(name: name, takesValue: words.count > 1 && words[1].hasPrefix("<"))
    }
    return options.values.sorted { $0.name < $1.name }
  }

  /// `[section]` headers and `key = value` lines; `#` starts a comment.
  static func parse(file path: String) throws -> [String: [String: String]] {
    let text: String
    do {
      text = try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw Failure(message: "cannot read config file \(path): \(error.localizedDescription)")
    }
    var sections: [String: [String: String]] = [:]
    var section = "common"
    for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
    {
      let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
        .trimmingCharacters(in: .whitespaces)
      if line.isEmpty { continue }
      if line.hasPrefix("[") && line.hasSuffix("]") {
        section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
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
      sections[section, default: [:]][parts[0]] = parts[1]
    }
    return sections
  }
}
