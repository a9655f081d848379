/// How a server's checkpoints are going, for `status`: the newest checkpoint on
/// disk (what a restart with `--resume` would start from) and the failures, so
/// that a full disk is seen outside the server's log. Ages are measured by the
/// server when it answers, so the reader's clock does not matter.
public struct CheckpointHealth: Equatable, Sendable {
  /// Longest error text kept, in bytes.
  public static let maximumErrorLength = 1024

  /// The version of the newest checkpoint written (or resumed from) by this
  /// server; nil when none is durable yet.
  public var durableVersion: UInt64?
  /// How long ago that checkpoint was written, in milliseconds (0 without one).
  public var durableAgeMilliseconds: UInt64
  /// Checkpoint attempts that failed since the server started.
  public var failures: UInt64
  /// Attempts that failed since the last success (0: checkpoints are working).
  public var consecutiveFailures: UInt64
  /// Milliseconds since the first of those failures (0 when working).
  public var failingForMilliseconds: UInt64
  /// The latest checkpoint error (empty when there was none), cut to 1024 bytes.
  public var lastError: String
  /// How long ago it happened, in milliseconds (0 without one).
  public var lastErrorAgeMilliseconds: UInt64

  /// A checkpoint report; `lastError` is cut to 1024 bytes.
  public init(
    durableVersion: UInt64?, durableAgeMilliseconds: UInt64 = 0, failures: UInt64 = 0,
    consecutiveFailures: UInt64 = 0, failingForMilliseconds: UInt64 = 0, lastError: String = "",
    lastErrorAgeMilliseconds: UInt64 = 0
  ) {
    self.durableVersion = durableVersion
    self.durableAgeMilliseconds = durableVersion == nil ? 0 : durableAgeMilliseconds
    self.failures = failures
    self.consecutiveFailures = consecutiveFailures
    self.failingForMilliseconds = failingForMilliseconds
    var text = lastError
    while text.utf8.count > Self.maximumErrorLength { text.removeLast() }
    self.lastError = text
    self.lastErrorAgeMilliseconds = lastErrorAgeMilliseconds
  }

  /// Whether the latest attempt failed.
  public var isFailing: Bool { consecutiveFailures > 0 }
}

extension CheckpointHealth {
  /// The status's checkpoint report after its presence flag (`docs/protocol.md`).
  func encode<Sink: ByteSink>(into sink: inout Sink) {
    sink.write(UInt8(durableVersion == nil ? 0 : 1))
    if let durableVersion {
      sink.write(durableVersion)
      sink.write(durableAgeMilliseconds)
    }
    sink.write(failures)
    sink.write(consecutiveFailures)
    sink.write(failingForMilliseconds)
    sink.write(lastError, lengthAs: UInt16.self)
    sink.write(lastErrorAgeMilliseconds)
  }

  static func decode(from reader: inout ByteReader) throws(DecodeError) -> CheckpointHealth {
    var durable: (version: UInt64, age: UInt64)?
    if try reader.readFlag("durable checkpoint present") {
      durable = (
        try reader.read(UInt64.self, "durable checkpoint version"),
        try reader.read(UInt64.self, "durable checkpoint age")
      )
    }
    let failures = try reader.read(UInt64.self, "checkpoint failures")
    let consecutive = try reader.read(UInt64.self, "consecutive checkpoint failures")
    guard consecutive <= failures else {
      throw .outOfRange(
        field: "consecutive checkpoint failures", value: String(consecutive),
        allowed: "at most the \(failures) failures")
    }
    let failingFor = try reader.read(UInt64.self, "checkpoints failing for")
    let lastError = try reader.readString(
      lengthAs: UInt16.self, maximum: CheckpointHealth.maximumErrorLength, "last checkpoint error")
    let lastErrorAge = try reader.read(UInt64.self, "last checkpoint error age")
    return CheckpointHealth(
      durableVersion: durable?.version, durableAgeMilliseconds: durable?.age ?? 0,
      failures: failures, consecutiveFailures: consecutive, failingForMilliseconds: failingFor,
      lastError: lastError, lastErrorAgeMilliseconds: lastErrorAge)
  }
}
