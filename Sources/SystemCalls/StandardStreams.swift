/// The process's standard output and error as the C library holds them.
public enum StandardStreams {
  /// Whether standard output is a terminal (where a redrawn progress line makes sense).
  public static var outputIsTerminal: Bool { Syscall.isTerminal(Syscall.standardOutput) }

  /// Flushes standard output at every newline, so a parent reading the pipe sees
  /// each line as it is printed.
  public static func lineBufferOutput() { Syscall.lineBufferStandardOutput() }

  /// Writes `text` to standard error and flushes it.
  public static func writeError(_ text: String) {
    var text = text
    text.withUTF8 { Syscall.writeStandardError(UnsafeRawBufferPointer($0)) }
  }

  /// Flushes every output stream (e.g. a progress line without a newline).
  public static func flushAll() { Syscall.flushAllStreams() }
}
