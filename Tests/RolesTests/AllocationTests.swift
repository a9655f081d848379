import AllocationCounter
import Foundation
import Testing
import TrainingMath
import WireProtocol
import ZeroMQ

@testable import Roles

/// A real ServerLoop (async by default, the seed model, waiting for `workers`
/// in sync and ssp) on its own thread on tcp loopback.
/// `sample` runs on that thread between messages, with the server.
final class ServerThread {
  let context: Context
  let endpoint: String
  private let stop = StopFlag()
  private let done = DispatchSemaphore(value: 0)

  init(
    mode: ConsistencyMode = .async, workers: Int = 1,
    sample: @escaping @Sendable (ParameterServer) -> Void = { _ in }
  ) throws {
    let context = try Context()
    let bound = Box()
    let ready = DispatchSemaphore(value: 0)
    let (stop, done) = (self.stop, self.done)
    Thread.detachNewThread {
      defer { done.signal() }
      let server = makeServer(mode, workers: workers)
      guard
        let loop = try? ServerLoop(server: server, context: context, endpoint: "tcp://127.0.0.1:*")
      else {
        ready.signal()
        return
      }
      bound.set(loop.boundEndpoint)
      ready.signal()
      try? loop.run(shouldStop: {
        sample(server)
        return stop.isSet
      })
    }
    ready.wait()
    self.context = context
    guard let endpoint = bound.value else {
      done.wait()
      throw RoleError.invalidArgument("the test server did not start")
    }
    self.endpoint = endpoint
  }

  /// Stops the server and waits for its thread.
  func shutdown() {
    stop.set()
    done.wait()
  }
}

/// Heap allocations per message in steady state, counted per thread by the
/// AllocationCounter wrappers: the server's thread and a worker's thread, each
/// against a real peer over tcp loopback.
@Suite(.serialized) struct AllocationTests {
  /// Runs a server thread and a client that pushes `pushes` gradients; returns the
  /// server thread's allocations per push over the last `measured` pushes.
  func serverAllocationsPerPush(mode: ConsistencyMode, pushes: UInt64, measured: UInt64) throws
    -> Double
  {
    let counts = AllocationSamples()
    let server = try ServerThread(mode: mode) { server in
      // Runs on the server thread when its loop checks whether to stop (between
      // drains of queued messages, at least every 100 ms): sample its own counter.
      counts.note(version: server.version, allocations: pstrain_thread_allocations())
      if traceAllocations {
        pstrain_trace_allocations(server.version > pushes - 3 && server.version < pushes ? 1 : 0)
      }
    }
    defer { server.shutdown() }
    let client = try ServerConnection(
      context: server.context, endpoint: server.endpoint, routingID: [9, 9])
    _ = try client.request(join(0, of: 1), timeoutMilliseconds: 5000, what: "join")
    var (sequence, version): (UInt64, UInt64) = (0, 0)
    // The server samples its counter only when its loop comes round to
    // `shouldStop`: not after every message (it drains what is queued first,
    // and on a loaded machine the next push is often queued already), and not
    // necessarily before the client has read the reply. So the client stops at
    // both ends of the measured stretch until the server, now idle, has sampled
    // the version it answered (within its 100 ms poll).
    func pushUntil(_ last: UInt64) throws -> UInt64 {
      while sequence < last {
        sequence += 1
        let reply = try client.request(
          push(0, sequence, at: version, [1e-9, 1e-9, 1e-9]), timeoutMilliseconds: 5000,
          what: "push")
        guard case .weights(let weights) = reply else {
          throw RoleError.invalidArgument("no weights")
        }
        version = weights.version
      }
      try #require(counts.waitForSample(of: version, timeoutMilliseconds: 10_000))
      return version
    }
    let start = try pushUntil(pushes - measured)
    let end = try pushUntil(pushes)
    #expect(end - start == measured)  // one version per push
    return try #require(counts.perVersion(from: start, to: end))
  }

  /// In a release build (`deploy/local.sh test` runs this suite once more with
  /// -c release) the server thread's only allocation per push is libzmq's buffer
  /// for the reply (libzmq allocates every message over 33 bytes); pstrain's own
  /// code allocates nothing, in every mode (in sync and ssp each push here
  /// completes a step: the gradient waits in a spare push's storage, the step's
  /// sum in a kept buffer). The count includes the 100 ms housekeeping (metrics),
  /// a few hundredths per push here. A debug build allocates more (unspecialized
  /// generics, closure contexts): 7 to 10 per push. With
  /// PSTRAIN_TRACE_ALLOCATIONS=1 the backtrace of every allocation of the last
  /// two pushes goes to stderr.
  @Test(arguments: [ConsistencyMode.async, .sync, .ssp])
  func theServerPathAllocatesNothingButLibzmqsReplyBuffer(mode: ConsistencyMode) throws {
    let perPush = try serverAllocationsPerPush(mode: mode, pushes: 3000, measured: 2000)
    print("server thread heap allocations per push, \(mode): \(perPush)")
    #if DEBUG
      #expect(perPush < 20)
    #else
      #expect(perPush < 1.1)
    #endif
  }

  /// A worker (`WorkerSession` in `WorkerLoop` over a `ServerConnection`) that
  /// trains `epochs` epochs of the seed data against `server`, on a thread of
  /// its own; returns that thread's allocations and the pushes applied.
  func workerRun(
    epochs: Int, pipeline: Int, id: UInt32, server: ServerThread, dataset: Dataset,
    shuffleSeed: UInt64? = nil
  ) throws -> (allocations: UInt64, pushes: UInt64) {
    let result = AllocationResult()
    let done = DispatchSemaphore(value: 0)
    let endpoint = server.endpoint
    let context = server.context
    Thread.detachNewThread {
      defer { done.signal() }
      do {
        let before = pstrain_thread_allocations()
        if traceAllocations && epochs > 1 { pstrain_trace_allocations(1) }
        defer { pstrain_trace_allocations(0) }
        let connection = try ServerConnection(
          context: context, endpoint: endpoint, routingID: [7, UInt8(id)])
        let session = try WorkerSession(
          workerID: id, source: .shard(.whole, epochs: epochs), dataset: dataset,
          model: ChainModel(layers: 3), pipeline: pipeline, shuffleSeed: shuffleSeed)
        try WorkerLoop.run(
          session, connection: connection,
          timing: .init(retryMilliseconds: 2000, replyTimeoutMilliseconds: 20_000),
          progress: { _ in })
        result.set(pstrain_thread_allocations() - before, session.pushesApplied)
      } catch {
        result.fail("\(error)")
      }
    }
    done.wait()
    return try result.get()
  }

  /// The worker's steady state: each further push costs one allocation, libzmq's
  /// buffer for the outgoing push (the reply is decoded into the previous one's
  /// storage, the push built in an answered push's storage, the activations
  /// reused, with --shuffle each epoch's order drawn in the buffer of the
  /// last). Measured as the difference between a short and a long run, so
  /// joining and leaving cancel out. Release only: the debug count is printed.
  @Test(arguments: [(1, false), (4, false), (1, true), (4, true)])
  func theWorkerPathAllocatesNothingButLibzmqsPushBuffer(pipeline: Int, shuffled: Bool) throws {
    let shuffleSeed: UInt64? = shuffled ? 3 : nil
    let server = try ServerThread()
    defer { server.shutdown() }
    // 1000 rows: a window is refilled at an epoch's end, once per 1000 pushes.
    let dataset = try Dataset.generate(rows: 1000, seed: 1)
    let short = try workerRun(
      epochs: 1, pipeline: pipeline, id: 1, server: server, dataset: dataset,
      shuffleSeed: shuffleSeed)
    let long = try workerRun(
      epochs: 3, pipeline: pipeline, id: 2, server: server, dataset: dataset,
      shuffleSeed: shuffleSeed)
    #expect(long.pushes - short.pushes == 2000)
    let perPush = Double(long.allocations - short.allocations) / 2000
    print(
      "worker thread heap allocations per push, pipeline \(pipeline), shuffled \(shuffled): \(perPush)"
    )
    #if DEBUG
      #expect(perPush < 20)
    #else
      #expect(perPush < 1.1)
    #endif
  }
}

/// A worker thread's outcome.
final class AllocationResult: @unchecked Sendable {
  private let lock = NSLock()
  private var value: Result<(UInt64, UInt64), RoleError>?

  func set(_ allocations: UInt64, _ pushes: UInt64) {
    lock.withLock { value = .success((allocations, pushes)) }
  }
  func fail(_ reason: String) { lock.withLock { value = .failure(.invalidArgument(reason)) } }
  func get() throws -> (allocations: UInt64, pushes: UInt64) {
    guard let value = lock.withLock({ value }) else { throw RoleError.invalidArgument("no result") }
    return try value.get()
  }
}

/// Whether to print allocation backtraces (PSTRAIN_TRACE_ALLOCATIONS=1).
let traceAllocations = ProcessInfo.processInfo.environment["PSTRAIN_TRACE_ALLOCATIONS"] == "1"

/// (version, allocations) samples taken on the server thread: the first sample
/// of each version, taken when the server's loop checks whether to stop.
final class AllocationSamples: @unchecked Sendable {
  private let lock = NSCondition()
  private var byVersion: [UInt64: UInt64] = [:]

  func note(version: UInt64, allocations: UInt64) {
    lock.withLock {
      if byVersion[version] == nil {
        byVersion[version] = allocations
        lock.broadcast()
      }
    }
  }

  /// Waits until `version` has been sampled; false if it was not within the timeout.
  func waitForSample(of version: UInt64, timeoutMilliseconds: Int) -> Bool {
    let deadline = Date(timeIntervalSinceNow: Double(timeoutMilliseconds) / 1000)
    return lock.withLock {
      while byVersion[version] == nil {
        if !lock.wait(until: deadline) { return byVersion[version] != nil }
      }
      return true
    }
  }

  func perVersion(from start: UInt64, to end: UInt64) -> Double? {
    lock.withLock {
      guard let first = byVersion[start], let last = byVersion[end] else { return nil }
      return Double(last - first) / Double(end - start)
    }
  }
}
