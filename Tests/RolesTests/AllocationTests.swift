import AllocationCounter
import Foundation
import Testing
import TrainingMath
import WireProtocol
import ZeroMQ

@testable import Roles

/// Heap allocations per message on the server's thread in steady state: a real
/// ServerLoop on tcp loopback, a client pushing gradients, the count read by the
/// server thread itself.
@Suite(.serialized) struct AllocationTests {
  /// Runs a server thread and a client that pushes `pushes` gradients; returns the
  /// server thread's allocations per push over the last `measured` pushes.
  func serverAllocationsPerPush(pushes: UInt64, measured: UInt64) throws -> Double {
    let context = try Context()
    let stop = StopFlag()
    let bound = Box()
    let counts = AllocationSamples()
    let ready = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
      defer { done.signal() }
      let server = makeServer(.async)
      guard
        let loop = try? ServerLoop(server: server, context: context, endpoint: "tcp://127.0.0.1:*")
      else {
        ready.signal()
        return
      }
      bound.set(loop.boundEndpoint)
      ready.signal()
      try? loop.run(shouldStop: {
        // Runs on the server thread between messages: sample its own counter.
        counts.note(version: server.version, allocations: pstrain_thread_allocations())
        if traceAllocations {
          pstrain_trace_allocations(server.version > pushes - 3 && server.version < pushes ? 1 : 0)
        }
        return stop.isSet
      })
    }
    ready.wait()
    defer {
      stop.set()
      done.wait()
    }
    let endpoint = try #require(bound.value)
    let client = try ServerConnection(context: context, endpoint: endpoint, routingID: [9, 9])
    _ = try client.request(join(0, of: 1), timeoutMilliseconds: 5000, what: "join")
    var version: UInt64 = 0
    for sequence in 1...pushes {
      let reply = try client.request(
        push(0, sequence, at: version, [1e-9, 1e-9, 1e-9]), timeoutMilliseconds: 5000, what: "push")
      guard case .weights(let weights) = reply else {
        throw RoleError.invalidArgument("no weights")
      }
      version = weights.version
    }
    return try #require(counts.perVersion(from: pushes - measured, to: pushes))
  }

  /// In a release build (`deploy/local.sh test` runs this suite once more with
  /// -c release) the server thread's only allocation per push is libzmq's buffer
  /// for the reply (libzmq allocates every message over 33 bytes); pstrain's own
  /// code allocates nothing. The count includes the 100 ms housekeeping (metrics),
  /// a few hundredths per push here. A debug build allocates more (unspecialized
  /// generics, closure contexts): about 25 per push. With
  /// PSTRAIN_TRACE_ALLOCATIONS=1 the backtrace of every allocation of the last
  /// two pushes goes to stderr.
  @Test func theServerPathAllocatesNothingButLibzmqsReplyBuffer() throws {
    let perPush = try serverAllocationsPerPush(pushes: 3000, measured: 2000)
    print("server thread heap allocations per push: \(perPush)")
    #if DEBUG
      #expect(perPush < 40)
    #else
      #expect(perPush < 1.1)
    #endif
  }
}

/// Whether to print allocation backtraces (PSTRAIN_TRACE_ALLOCATIONS=1).
let traceAllocations = ProcessInfo.processInfo.environment["PSTRAIN_TRACE_ALLOCATIONS"] == "1"

/// (version, allocations) samples taken on the server thread.
final class AllocationSamples: @unchecked Sendable {
  private let lock = NSLock()
  private var byVersion: [UInt64: UInt64] = [:]

  func note(version: UInt64, allocations: UInt64) {
    lock.withLock { if byVersion[version] == nil { byVersion[version] = allocations } }
  }

  func perVersion(from start: UInt64, to end: UInt64) -> Double? {
    lock.withLock {
      guard let first = byVersion[start], let last = byVersion[end] else { return nil }
      return Double(last - first) / Double(end - start)
    }
  }
}
