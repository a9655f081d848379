@preconcurrency import Glibc

// Every raw C library call pstrain's roles and commands make lives in this file
// (libzmq's live in ZeroMQ, swift-nio's in MetricsHTTP). Each wrapper returns the
// C result or throws a `SystemCallError` keeping errno; calls that a signal can
// interrupt are retried on EINTR, except `sleep`, which returns early on purpose
// so that a loop sleeping between retries notices a stop signal at once.
//
// The public APIs over it (FileIO, Signals, MonotonicClock, ThreadCPUClock, Sleep,
// ProcessControl, ResourceLimits, MallocTuning, StandardStreams) are the only callers.

/// The raw calls, one thin function each.
@usableFromInline
enum Syscall {
  /// Runs `call` until it does not fail with EINTR; a negative result throws
  /// `SystemCallError(operation, path)` with errno.
  @discardableResult
  static func retryingInterrupts<Result: SignedInteger>(
    _ operation: String, _ path: String?, _ call: () -> Result
  ) throws(SystemCallError) -> Result {
    while true {
      let result = call()
      if result >= 0 { return result }
      if errno == EINTR { continue }
      throw SystemCallError(operation: operation, path: path, errno: errno)
    }
  }

  // MARK: Files

  static func open(_ path: String, _ flags: Int32, mode: UInt32 = 0, operation: String)
    throws(SystemCallError) -> Int32
  {
    try retryingInterrupts(operation, path) { Glibc.open(path, flags | O_CLOEXEC, mode_t(mode)) }
  }

  static let createFlags = O_WRONLY | O_CREAT | O_TRUNC
  static let createExclusiveFlags = O_WRONLY | O_CREAT | O_EXCL
  static let appendNewFlags = O_WRONLY | O_CREAT | O_EXCL | O_APPEND
  static let readFlags = O_RDONLY
  static let fileExistsErrno = EEXIST
  static let badDescriptorErrno = EBADF
  static let directoryFlags = O_RDONLY | O_DIRECTORY

  /// Reads up to `buffer.count` bytes; 0 at the end of the file.
  static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, path: String)
    throws(SystemCallError) -> Int
  {
    try retryingInterrupts("read", path) { Glibc.read(fd, buffer.baseAddress, buffer.count) }
  }

  /// Writes all of `bytes`, continuing after short writes.
  static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String)
    throws(SystemCallError)
  {
    var written = 0
    while written < bytes.count {
      let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
      written += try retryingInterrupts("write", path) {
        Glibc.write(fd, rest.baseAddress, rest.count)
      }
    }
  }

  static func fsync(_ fd: Int32, path: String) throws(SystemCallError) {
    try retryingInterrupts("fsync", path) { Glibc.fsync(fd) }
  }

  /// Closes `fd`. Not retried: after EINTR the descriptor is already closed on Linux.
  static func close(_ fd: Int32) { _ = Glibc.close(fd) }

  static func rename(_ from: String, to: String) throws(SystemCallError) {
    guard Glibc.rename(from, to) == 0 else {
      throw SystemCallError(operation: "rename", path: from, destination: to, errno: errno)
    }
  }

  static func unlink(_ path: String) throws(SystemCallError) {
    guard Glibc.unlink(path) == 0 else {
      throw SystemCallError(operation: "remove", path: path, errno: errno)
    }
  }

  /// Creates a directory; one that exists already is no error.
  static func mkdir(_ path: String, mode: UInt32) throws(SystemCallError) {
    guard Glibc.mkdir(path, mode_t(mode)) == 0 || errno == EEXIST else {
      throw SystemCallError(operation: "create", path: path, errno: errno)
    }
  }

  /// Permission bits and modification time (seconds since 1970) of `path`.
  static func fileStatus(_ path: String) throws(SystemCallError) -> (mode: UInt32, modified: Double)
  {
    var info = stat()
    guard stat(path, &info) == 0 else {
      throw SystemCallError(operation: "stat", path: path, errno: errno)
    }
    return (
      UInt32(info.st_mode),
      Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    )
  }

  /// The names in a directory, without `.` and `..`.
  static func directoryEntries(_ path: String) throws(SystemCallError) -> [String] {
    guard let handle = opendir(path) else {
      throw SystemCallError(operation: "read directory", path: path, errno: errno)
    }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names
  }

  // MARK: Clocks and sleeping

  /// CLOCK_MONOTONIC in nanoseconds. Cannot fail for this clock id.
  @inlinable
  static func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
  }

  /// Nanoseconds since 1970 on the wall clock (CLOCK_REALTIME).
  static func wallClockNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
  }

  /// CLOCK_THREAD_CPUTIME_ID in nanoseconds: processor time the calling thread
  /// has used. Cannot fail for this clock id.
  static func threadCPUNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
  }

  /// Sleeps up to `nanoseconds`; a signal handler running ends it early (not retried).
  static func sleep(nanoseconds: UInt64) {
    var request = timespec(
      tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    _ = nanosleep(&request, nil)
  }

  // MARK: Signals

  typealias SignalHandler = @convention(c) (Int32) -> Void

  static func ignore(signal number: Int32) { _ = Glibc.signal(number, SIG_IGN) }

  static func handle(signal number: Int32, with handler: SignalHandler) {
    _ = Glibc.signal(number, handler)
  }

  static func unblock(signals numbers: [Int32]) {
    var set = sigset_t()
    sigemptyset(&set)
    for number in numbers { sigaddset(&set, number) }
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
  }

  static func kill(_ pid: Int32, signal number: Int32) throws(SystemCallError) {
    guard Glibc.kill(pid, number) == 0 else {
      throw SystemCallError(operation: "signal process \(pid)", path: nil, errno: errno)
    }
  }

  static let interruptSignal = SIGINT
  static let terminateSignal = SIGTERM
  static let killSignal = SIGKILL
  static let pipeSignal = SIGPIPE
  static let fileSizeLimitSignal = SIGXFSZ

  // MARK: Processes

  static func processID() -> Int32 { getpid() }

  /// The host's name (`gethostname`), "localhost" if it cannot be read.
  static func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
  static func parentProcessID() -> Int32 { getppid() }
  static func exitImmediately(_ status: Int32) -> Never { _exit(status) }
  static func exit(_ status: Int32) -> Never { Glibc.exit(status) }

  /// `prctl(PR_SET_PDEATHSIG, signal)`. `prctl` is variadic in C, which Swift cannot
  /// call, so it is called through a pointer of the fixed-argument type (the
  /// calling conventions agree for integer arguments on Linux's ABIs).
  static func setParentDeathSignal(_ number: Int32) throws(SystemCallError) {
    typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
    let setParentDeathSignal: Int32 = 1  // PR_SET_PDEATHSIG, <linux/prctl.h>
    guard let symbol = dlsym(nil, "prctl") else {
      throw SystemCallError(operation: "find prctl", path: nil, errno: ENOSYS)
    }
    let prctl = unsafeBitCast(symbol, to: Prctl.self)
    guard prctl(setParentDeathSignal, UInt(number), 0, 0, 0) == 0 else {
      throw SystemCallError(operation: "set the parent-death signal", path: nil, errno: errno)
    }
  }

  static func environmentVariable(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
  }

  static func unsetEnvironmentVariable(_ name: String) { unsetenv(name) }

  // MARK: Resource limits

  static func openFilesLimit() throws(SystemCallError) -> (soft: UInt64, hard: UInt64) {
    var limit = rlimit()
    guard getrlimit(openFilesResource, &limit) == 0 else {
      throw SystemCallError(operation: "read the open-file limit", path: nil, errno: errno)
    }
    return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
  }

  static func setOpenFilesLimit(soft: UInt64, hard: UInt64) throws(SystemCallError) {
    var limit = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
    guard setrlimit(openFilesResource, &limit) == 0 else {
      throw SystemCallError(operation: "set the open-file limit", path: nil, errno: errno)
    }
  }

  private static let openFilesResource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

  // MARK: Allocator

  /// glibc's M_MMAP_THRESHOLD: allocations this large or larger come from mmap.
  static func setMmapThreshold(_ bytes: Int32) -> Bool {
    let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD, <malloc.h>
    return mallopt(mmapThreshold, bytes) == 1
  }

  // MARK: Standard streams

  static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }
  static let standardOutput = STDOUT_FILENO
  static let standardError = STDERR_FILENO

  static func lineBufferStandardOutput() { setvbuf(stdout, nil, _IOLBF, 0) }

  static func writeStandardError(_ bytes: UnsafeRawBufferPointer) {
    _ = fwrite(bytes.baseAddress, 1, bytes.count, stderr)
    fflush(stderr)
  }

  static func flushAllStreams() { fflush(nil) }

  // MARK: Errors

  /// The C library's text for `code`, e.g. "No space left on device".
  static func describe(errno code: Int32) -> String { String(cString: strerror(code)) }
}

/// glibc's `mallopt`, declared here because its header (malloc.h) is not part
/// of the Glibc module.
@_silgen_name("mallopt")
private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
