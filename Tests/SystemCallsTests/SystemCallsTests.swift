import Foundation
import Testing

@testable import SystemCalls

#if canImport(Glibc)
  import Glibc
#endif

/// A fresh empty directory under the temporary directory.
private func scratchDirectory() throws -> String {
  let path = FileManager.default.temporaryDirectory.appendingPathComponent(
    "pstrain-syscalls-\(UUID().uuidString)"
  ).path
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
  return path
}

@Suite struct FileIOTests {
  @Test func anAtomicWriteReplacesTheFileAndLeavesNoTemporaryFile() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/state"
    try FileIO.writeAtomically(Array("old".utf8), to: path)
    try FileIO.writeAtomically(Array("new contents".utf8), to: path)
    #expect(try FileIO.read(path) == Array("new contents".utf8))
    #expect(try FileIO.names(inDirectory: directory) == ["state"])
    #expect(try FileIO.status(path).permissions == 0o644)
  }

  @Test func aFailedAtomicWriteKeepsTheOldFileAndRemovesItsTemporaryFile() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/state"
    try FileIO.writeAtomically(Array("old".utf8), to: path)
    // A directory where the file should go: the rename fails after the write.
    let blocked = directory + "/blocked"
    try FileManager.default.createDirectory(
      atPath: blocked + "/inside", withIntermediateDirectories: true)
    #expect(throws: SystemCallError.self) {
      try FileIO.writeAtomically(Array("new".utf8), to: blocked)
    }
    #expect(try FileIO.read(path) == Array("old".utf8))
    #expect(try FileIO.names(inDirectory: directory).sorted() == ["blocked", "state"])
  }

  @Test func anErrorKeepsErrnoAndNamesThePath() throws {
    let missing = "/nonexistent-\(UUID().uuidString)/file"
    do {
      _ = try FileIO.read(missing)
      Issue.record("reading \(missing) succeeded")
    } catch {
      #expect(error.errno == ENOENT)
      #expect(error.path == missing)
      #expect(error.description == "cannot read \(missing): No such file or directory (errno 2)")
      #expect(
        error.describing("read config file").description
          == "cannot read config file \(missing): No such file or directory (errno 2)")
    }
  }

  @Test func anErrorReadsAsOneSentence() {
    let full = SystemCallError(operation: "write", path: "/x/y", errno: ENOSPC)
    #expect(full.description == "cannot write /x/y: No space left on device (errno 28)")
    let rename = SystemCallError(operation: "rename", path: "/a", destination: "/b", errno: EXDEV)
    #expect(rename.description.hasPrefix("cannot rename /a to /b: "))
    let limit = SystemCallError(operation: "read the open-file limit", path: nil, errno: EPERM)
    #expect(limit.description.hasPrefix("cannot read the open-file limit: "))
  }

  @Test func creatingANewFileRefusesAnExistingOneAndSetsItsPermissions() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/secret"
    try FileIO.createNew(Array("key".utf8), at: path, permissions: 0o600)
    #expect(try FileIO.status(path).permissions == 0o600)
    do {
      try FileIO.createNew(Array("other".utf8), at: path, permissions: 0o600)
      Issue.record("an existing file was replaced")
    } catch {
      #expect(error.errno == EEXIST)
      #expect(error.description.hasPrefix("cannot create \(path): File exists"))
    }
    #expect(try FileIO.read(path) == Array("key".utf8))
  }

  @Test func readingStopsAtTheLimit() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/big"
    let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0) }
    try FileIO.writeAtomically(bytes, to: path)
    #expect(try FileIO.read(path) == bytes)
    #expect(try FileIO.read(path, limit: 4096) == Array(bytes[..<4096]))
  }

  @Test func makingADirectoryThatExistsIsNoErrorButAMissingParentIs() throws {
    let directory = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try FileIO.makeDirectory(directory + "/sub", permissions: 0o755)
    try FileIO.makeDirectory(directory + "/sub", permissions: 0o755)
    #expect(throws: SystemCallError(operation: "create", path: directory + "/a/b", errno: ENOENT)) {
      try FileIO.makeDirectory(directory + "/a/b", permissions: 0o755)
    }
  }
}

@Suite struct SyscallTests {
  @Test func anInterruptedCallIsRetriedAndAnyOtherFailureThrows() throws {
    var attempts = 0
    let result = try Syscall.retryingInterrupts("read", "/p") { () -> Int in
      attempts += 1
      if attempts < 3 {
        errno = EINTR
        return -1
      }
      return 7
    }
    #expect(result == 7)
    #expect(attempts == 3)
    #expect(throws: SystemCallError(operation: "read", path: "/p", errno: EIO)) {
      try Syscall.retryingInterrupts("read", "/p") { () -> Int in
        errno = EIO
        return -1
      }
    }
  }

  @Test func theMonotonicClockNeverGoesBackAndCountsASleep() {
    var previous = MonotonicClock.nanoseconds()
    for _ in 0..<1000 {
      let now = MonotonicClock.nanoseconds()
      #expect(now >= previous)
      previous = now
    }
    let before = MonotonicClock.milliseconds()
    Sleep.milliseconds(20)
    // A lower bound only: a loaded machine makes the sleep longer, never shorter.
    #expect(MonotonicClock.milliseconds() - before >= 20)
  }

  @Test func theOpenFileLimitReadsAndCanBeSetToItself() throws {
    let limit = try ResourceLimits.openFiles()
    #expect(limit.soft > 0)
    #expect(limit.soft <= limit.hard)
    try ResourceLimits.setOpenFiles(limit)
    #expect(try ResourceLimits.openFiles() == limit)
  }

  @Test func aSoftLimitAboveTheHardOneIsRefusedWithErrno() throws {
    let limit = try ResourceLimits.openFiles()
    guard limit.hard != ResourceLimit.unlimited else { return }
    #expect(throws: SystemCallError.self) {
      try ResourceLimits.setOpenFiles(ResourceLimit(soft: limit.hard + 1, hard: limit.hard))
    }
    #expect(try ResourceLimits.openFiles() == limit)
  }

  @Test func processIDsAreThisProcessAndItsParent() {
    #expect(ProcessControl.id == getpid())
    #expect(ProcessControl.parentID == getppid())
  }

  /// Only a missing variable: setting one with setenv while other suites' threads
  /// read the environment is a data race in glibc. `pstrain train`'s children take
  /// a real one (TrainCommandTests).
  @Test func aMissingEnvironmentVariableIsNil() {
    #expect(ProcessControl.takeEnvironmentVariable("PSTRAIN_SYSCALLS_UNSET_\(getpid())") == nil)
  }

  @Test func signalsHaveTheirNames() {
    #expect(Signal.terminate.number == SIGTERM)
    #expect(Signal.fileSizeLimitExceeded.description == "SIGXFSZ")
    #expect(Signal(number: 64).description == "signal 64")
  }
}
