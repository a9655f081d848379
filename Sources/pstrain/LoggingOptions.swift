import ArgumentParser
import Foundation
import Logging
import Roles

/// `--log-level` and `--log-format`, for the long-running roles.
struct LoggingOptions: ParsableArguments {
  enum Format: String, ExpressibleByArgument, CaseIterable {
    case text, json
  }

  @Option(help: "Least severe level logged: trace, debug, info, notice, warning, error, critical.")
  var logLevel: Logger.Level = .info

  @Option(help: "text (\"label: message key=value\") or json (one object per line).")
  var logFormat: Format = .text

  /// Bootstraps swift-log once for this process and returns a logger labelled `label`.
  func logger(_ label: String) -> Logger {
    let (format, level) = (logFormat, logLevel)
    LoggingSystem.bootstrap { label in
      var handler = LineLogHandler(label: label, json: format == .json)
      handler.logLevel = level
      return handler
    }
    return Logger(label: label)
  }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Writes one line per message to standard output: `label: message key=value` or a
/// JSON object with time, level, label, message and metadata.
struct LineLogHandler: LogHandler {
  let label: String
  let json: Bool
  var logLevel: Logger.Level = .info
  var metadata: Logger.Metadata = [:]

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    let (level, message) = (event.level, event.message)
    let all = metadata.merging(event.metadata ?? [:]) { $1 }
    let text: String
    if json {
      let fields = all.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\(quote("\($0.value)"))" }
      text =
        "{\"time\":\(quote(Self.timestamp())),\"level\":\(quote(level.rawValue)),\"label\":\(quote(label)),"
        + "\"message\":\(quote(message.description)),\"metadata\":{\(fields.joined(separator: ","))}}"
    } else {
      let fields = all.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
      let prefix = level >= .warning ? "\(level.rawValue): " : ""
      text = "\(label): \(prefix)\(message)\(fields)"
    }
    print(text)
  }

  private func quote(_ text: String) -> String { JSON.string(text) }

  private static func timestamp() -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date())
  }
}
