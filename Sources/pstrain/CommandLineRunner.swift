import ArgumentParser
import Foundation
import SystemCalls

/// Parses and runs a resolved command line, reporting every error one way: one line
/// starting `pstrain:`, the command's usage only after a mistake on the command line
/// itself, and a flag that came from the environment or a config file blamed on
/// that place rather than on a `--flag` the user never typed.
enum CommandLineRunner {
  /// Runs `commandLine` and exits with the command's status.
  static func run(_ commandLine: ResolvedCommandLine) -> Never {
    var command: any ParsableCommand
    do {
      command = try PStrain.parseAsRoot(commandLine.arguments)
    } catch {
      ProcessControl.exit(report(parseError: error, commandLine))
    }
    do {
      try command.run()
      ProcessControl.exit(0)
    } catch {
      // Mistakes found while running (a file that cannot be read) get no usage text.
      ProcessControl.exit(report(error, commandLine, usage: false))
    }
  }

  /// Prints the message for an error from parsing and returns the exit status.
  private static func report(parseError error: Error, _ commandLine: ResolvedCommandLine) -> Int32 {
    report(
      error, commandLine, usage: true, message: rangeMessage(for: error, commandLine.arguments))
  }

  /// Prints the message for `error` (help and version to stdout), or `message` in its
  /// place, and returns the exit status.
  private static func report(
    _ error: Error, _ commandLine: ResolvedCommandLine, usage: Bool, message: String? = nil
  ) -> Int32 {
    let code = PStrain.exitCode(for: error)
    if code == .success {
      let text = PStrain.fullMessage(for: error)
      if !text.isEmpty { print(text) }
      return 0
    }
    let replaced = message != nil
    let message = message ?? PStrain.message(for: error)
    // ExitCode errors were explained before they were thrown.
    guard !message.isEmpty else { return code.rawValue }
    let blamed = commandLine.origins.keys.sorted().filter { mentions(message, flag: $0) }
    if !blamed.isEmpty {
      let places = blamed.map { "--\($0) comes from \(commandLine.origins[$0] ?? "")" }
      printError("\(places.joined(separator: "; ")): \(message)")
    } else if usage && code == .validationFailure {
      let full = PStrain.fullMessage(for: error)
      if replaced, let usageText = full.range(of: "Usage:") {
        printError("\(message)\n\(full[usageText.lowerBound...])")
      } else {
        printToStandardError(full)
      }
    } else {
      printError(message)
    }
    return code.rawValue
  }

  /// Whether `message` names `--flag` (and not a longer flag that starts the same).
  private static func mentions(_ message: String, flag: String) -> Bool {
    var rest = message[...]
    while let found = rest.range(of: "--\(flag)") {
      let next = rest[found.upperBound...].first
      if next.map({ !($0.isLetter || $0.isNumber || $0 == "-") }) ?? true { return true }
      rest = rest[found.upperBound...]
    }
    return false
  }

  /// For a negative whole number that a flag's type refused (an unsigned flag), the
  /// flag's range: the check its command makes on 0 if 0 is refused too ("--every
  /// must be >= 1"), else ">= 0". Nil for any other error.
  private static func rangeMessage(for error: Error, _ arguments: [String]) -> String? {
    let message = PStrain.message(for: error)
    guard
      let match = message.firstMatch(of: /^The value '(-[0-9]+)' is invalid for '--([a-z0-9-]+)/)
    else { return nil }
    let (value, flag) = (String(match.1), String(match.2))
    let zeroed = arguments.map { $0 == "--\(flag)=\(value)" ? "--\(flag)=0" : $0 }
    do {
      _ = try PStrain.parseAsRoot(zeroed)
    } catch {
      let check = PStrain.message(for: error)
      if check.hasPrefix("--\(flag) ") { return "\(check), got \(value)" }
    }
    return "--\(flag) must be >= 0, got \(value)"
  }
}
