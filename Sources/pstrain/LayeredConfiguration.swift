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
/// so one file and one environment can serve every role; but a key no command accepts
/// (or the section's command does not), or a section that names no command, is an
/// error naming the file, the line and the nearest valid name. A bad value is blamed
/// on where it came from (the variable, or the file and line), not on a flag.
enum LayeredConfiguration {
  /// This process's arguments completed from its environment and config file.
  static func resolveCommandLine() throws -> ResolvedCommandLine {
    try resolve(
      Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
  }

  /// `arguments` (without the program name) completed from the environment and
  /// the config file, with a negative number after a value-taking option joined to
  /// it (`--lr -1` becomes `--lr=-1`, which ArgumentParser would otherwise read as
  /// a flag `-1`). Every key and section of the config file must name a flag and a
  /// command: a typo is an error, never silently ignored.
  static func resolve(_ arguments: [String], environment: [String: String]) throws
    -> ResolvedCommandLine
  {
    var remaining = arguments
    let configPath = takeConfigFlag(&remaining) ?? environment["PSTRAIN_CONFIG"]
    guard let (command, path) = commandPath(remaining) else {
      return ResolvedCommandLine(arguments: remaining)
    }
    let options = acceptedOptions(of: command)
    remaining = joiningNegativeValues(
      remaining, valueOptions: Set(options.filter(\.takesValue).map(\.name)))
    if remaining.contains(where: { $0 == "--help" || $0 == "-h" || $0 == "--version" }) {
      return ResolvedCommandLine(arguments: remaining)
    }
    let file = try configPath.map { try ConfigurationFile(path: $0) }
    try file?.checkKeys()
    let sectionName = path.joined(separator: " ")
    var added: [String] = []
    var origins: [String: String] = [:]
    for option in options {
      if remaining.contains(where: { $0 == "--\(option.name)" || $0.hasPrefix("--\(option.name)=") }
      ) {
        continue
      }
      let flag = option.name.uppercased().replacingOccurrences(of: "-", with: "_")
      let command = path.joined(separator: "_").uppercased()
      let value: String
      let origin: String
      if let name = ["PSTRAIN_\(command)_\(flag)", "PSTRAIN_\(flag)"].first(where: {
        environment[$0] != nil
      }), let setting = environment[name] {
        value = setting
        origin = "the environment variable \(name)=\(setting)"
      } else if let file,
        let entry = file.sections[sectionName]?[option.name]
          ?? file.sections["common"]?[option.name]
      {
        value = entry.value
        origin = "config file \(file.path), line \(entry.line) (\(option.name) = \(entry.value))"
      } else {
        continue
      }
      origins[option.name] = origin
      if option.takesValue {
        added.append("--\(option.name)=\(value)")
      } else {
        switch value.lowercased() {
        case "true", "yes", "1": added.append("--\(option.name)")
        case "false", "no", "0": break
        default:
          throw Failure(
            message:
              "\(origin): \(option.name) is a flag: set it to true or false, not \"\(value)\"")
        }
      }
    }
    // Options go right after the command's name, before any positional arguments.
    return ResolvedCommandLine(
      arguments: Array(remaining.prefix(path.count)) + added + remaining.dropFirst(path.count),
      origins: origins)
  }

  /// `arguments` with each `--NAME VALUE`, where NAME takes a value and VALUE is a
  /// negative number, written `--NAME=VALUE`; nothing after `--` is touched.
  static func joiningNegativeValues(_ arguments: [String], valueOptions: Set<String>) -> [String] {
    var joined: [String] = []
    var index = arguments.startIndex
    while index < arguments.endIndex {
      let word = arguments[index]
      if word == "--" {
        joined += arguments[index...]
        break
      }
      if word.hasPrefix("--"), valueOptions.contains(String(word.dropFirst(2))),
        index + 1 < arguments.endIndex, isNegativeNumber(arguments[index + 1])
      {
        joined.append("\(word)=\(arguments[index + 1])")
        index += 2
        continue
      }
      joined.append(word)
      index += 1
    }
    return joined
  }

  /// Whether `word` is a number with a leading minus sign, such as `-1`, `-0.5` or `-1e-3`.
  private static func isNegativeNumber(_ word: String) -> Bool {
    word.count > 1 && word.hasPrefix("-") && Double(word) != nil
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
  static func commandPath(_ arguments: [String]) -> (any ParsableCommand.Type, [String])? {
    var command: any ParsableCommand.Type = PStrain.self
    var path: [String] = []
    for word in arguments {
      guard
        let next = command.configuration.subcommands.first(where: {
          $0._commandName == word
        })
      else { break }
      command = next
      path.append(word)
    }
    return path.isEmpty ? nil : (command, path)
  }

  struct Option {
    var name: String
    var takesValue: Bool
  }

  /// The long options `command` accepts, read from its help text.
  static func acceptedOptions(of command: any ParsableCommand.Type) -> [Option] {
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
}
