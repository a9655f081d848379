import Foundation
import Roles
import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// pstrain's server and clients against raw libzmq loops with the same message
/// sizes and client counts, all on tcp loopback in this process, in the same run.
enum NetworkBenchmarks {
  /// A pstrain server (async, chain of `layers`) on its own thread.
  final class ServerThread: Sendable {
    let endpoint: String
    private let thread: SocketThread

    init(layers: Int) throws {
      let bound = Shared<String?>(nil)
      let ready = DispatchSemaphore(value: 0)
      thread = SocketThread { thread in
        let model = ChainModel(layers: layers)
        let server = ParameterServer(
          configuration: ServerConfiguration(
            mode: .async, requiredWorkers: 1,
            optimizer: try! OptimizerSettings(learningRate: 1e-12),
            model: ModelCatalog.descriptor(of: model), initialParameters: model.initialWeights()))
        guard let context = try? Context(),
          let loop = try? ServerLoop(
            server: server, context: context, endpoint: "tcp://127.0.0.1:*")
        else {
          ready.signal()
          return
        }
        bound.set(loop.boundEndpoint)
        ready.signal()
        try? loop.run(shouldStop: { thread.isStopping })
      }
      ready.wait()
      guard let endpoint = bound.value else { throw Failure(message: "bench server did not start") }
      self.endpoint = endpoint
    }

    func shutdown() { thread.stop() }
  }

  /// Bytes a raw loop sends by reference: libzmq holds this box until it is done.
  final class SentBytes: Sendable {
    let bytes: [UInt8]
    init(count: Int, value: UInt8) { bytes = [UInt8](repeating: value, count: count) }
  }

  /// A raw ROUTER that answers every request with `replySize` bytes, or (one-way)
  /// only counts what arrives. With `zeroCopy` it sends the reply by reference
  /// (`zmq_msg_init_data`) instead of copying it into a new frame.
  final class RawRouterThread: Sendable {
    let endpoint: String
    let received = Shared(0)
    private let thread: SocketThread

    init(replySize: Int?, zeroCopy: Bool = false) throws {
      let bound = Shared<String?>(nil)
      let ready = DispatchSemaphore(value: 0)
      let received = self.received
      thread = SocketThread { thread in
        guard let context = try? Context(), let router = try? Socket(context, kind: .router),
          (try? router.set([.linger(milliseconds: 0), .receiveHighWaterMark(10_000)])) != nil,
          (try? router.bind("tcp://127.0.0.1:*")) != nil
        else {
          ready.signal()
          return
        }
        bound.set(try? router.lastEndpoint())
        ready.signal()
        let reply = replySize.map { SentBytes(count: $0, value: 7) }
        var count = 0
        while !thread.isStopping {
          guard (try? router.waitForInput(timeoutMilliseconds: 50)) == true else { continue }
          while let request = try? router.receiveMultipart(.dontWait) {
            count += 1
            guard let reply else { continue }
            if zeroCopy {
              _ = try? router.send(Message(bytes: request.frames[0].bytes), more: true)
              _ = reply.bytes.withUnsafeBytes { bytes in
                try? router.sendFrame(referencing: bytes, owner: reply)
              }
            } else {
              _ = try? router.send(multipart: [
                Message(bytes: request.frames[0].bytes), Message(bytes: reply.bytes),
              ])
            }
          }
          received.set(count)
        }
        received.set(count)
      }
      ready.wait()
      guard let endpoint = bound.value else { throw Failure(message: "raw router did not start") }
      self.endpoint = endpoint
    }

    func shutdown() { thread.stop() }
  }

  static func seedIdentity(layers: Int) -> (ModelDescriptor, DatasetIdentity) {
    (
      ModelCatalog.descriptor(of: ChainModel(layers: layers)),
      DatasetIdentity(rows: 1, fingerprint: 1)
    )
  }

  static func push(
    layers: Int, worker: UInt32, sequence: UInt64, version: UInt64, gradient: NamedTensors? = nil
  ) -> WireMessage {
    .push(
      GradientPush(
        workerID: worker, sequence: sequence, computedAtVersion: version,
        rows: [0],
        gradient: gradient ?? smallGradient(layers: layers)))
  }

  /// A gradient of `layers` tiny values (a worker reuses its gradient buffer; so does the bench).
  static func smallGradient(layers: Int) -> NamedTensors {
    NamedTensors(
      layout: [TensorSpec(name: "w", count: layers)],
      values: [Double](repeating: 1e-9, count: layers))
  }

  /// Gradients applied per second for `clients` pstrain workers, each with
  /// `inFlight` pushes outstanding, sent `perFrame` to a frame.
  static func pstrainRate(
    layers: Int, clients: Int, inFlight: Int, perFrame: Int = 1, duration: Double
  ) throws -> Double {
    let server = try ServerThread(layers: layers)
    defer { server.shutdown() }
    let endpoint = server.endpoint
    let total = Shared(0)
    let finished = (0..<clients).map { index in
      onThread {
        guard let context = try? Context(),
          let connection = try? ServerConnection(
            context: context, endpoint: endpoint, parameterCount: layers,
            routingID: [1, UInt8(index)])
        else { return }
        let (model, data) = seedIdentity(layers: layers)
        let shard = try! Shard(index: index, count: clients)
        guard
          case .weights(let first)? = try? connection.request(
            .join(Join(workerID: UInt32(index), shard: shard, model: model, dataset: data)),
            timeoutMilliseconds: 10_000, what: "join")
        else { return }
        var version = first.version
        var sequence: UInt64 = 0
        let gradient = smallGradient(layers: layers)
        var answered = 0
        let deadline = MonotonicClock.nanoseconds() + UInt64(duration * 1e9)
        // Built once and renumbered for each send, as a worker reuses its pushes' storage.
        guard
          case .push(let template) = push(
            layers: layers, worker: UInt32(index), sequence: 1, version: 0, gradient: gradient)
        else { return }
        var frame = [GradientPush](repeating: template, count: perFrame)
        func sendFrame() {
          for position in frame.indices {
            sequence += 1
            frame[position].sequence = sequence
            frame[position].computedAtVersion = version
          }
          try? connection.send(perFrame == 1 ? .push(frame[0]) : .pushes(frame))
        }
        for _ in 0..<(inFlight / perFrame) { sendFrame() }
        while MonotonicClock.nanoseconds() < deadline {
          guard case .weights(let reply)? = try? connection.receive(timeoutMilliseconds: 5000)
          else { break }
          version = reply.version
          answered += perFrame
          sendFrame()
        }
        total.update { $0 += answered }
      }
    }
    for done in finished { done.wait() }
    return Double(total.value) / duration
  }

  /// Round trips per second of raw DEALER clients against a raw echo ROUTER;
  /// with `zeroCopy` both send by reference instead of copying into frames.
  static func rawRate(
    requestSize: Int, replySize: Int, clients: Int, inFlight: Int, duration: Double,
    zeroCopy: Bool = false
  )
    throws -> Double
  {
    let router = try RawRouterThread(replySize: replySize, zeroCopy: zeroCopy)
    defer { router.shutdown() }
    let endpoint = router.endpoint
    let total = Shared(0)
    let finished = (0..<clients).map { index in
      onThread {
        guard let context = try? Context(), let dealer = try? Socket(context, kind: .dealer),
          (try? dealer.set([.linger(milliseconds: 0), .routingID([2, UInt8(index)])])) != nil,
          (try? dealer.connect(endpoint)) != nil
        else { return }
        let request = SentBytes(count: requestSize, value: 3)
        func send() {
          if zeroCopy {
            _ = request.bytes.withUnsafeBytes { bytes in
              try? dealer.sendFrame(referencing: bytes, owner: request)
            }
          } else {
            _ = try? dealer.send(Message(bytes: request.bytes))
          }
        }
        var answered = 0
        let deadline = MonotonicClock.nanoseconds() + UInt64(duration * 1e9)
        for _ in 0..<inFlight { send() }
        while MonotonicClock.nanoseconds() < deadline {
          guard (try? dealer.waitForInput(timeoutMilliseconds: 5000)) == true,
            (try? dealer.receive()) != nil
          else { break }
          answered += 1
          send()
        }
        total.update { $0 += answered }
      }
    }
    for done in finished { done.wait() }
    return Double(total.value) / duration
  }

  /// Messages per second from `clients` raw DEALERs sending one way as fast as they can.
  static func rawOneWayRate(size: Int, clients: Int, duration: Double) throws -> Double {
    let router = try RawRouterThread(replySize: nil)
    let endpoint = router.endpoint
    let stop = Shared(false)
    let finished = (0..<clients).map { index in
      onThread {
        guard let context = try? Context(), let dealer = try? Socket(context, kind: .dealer),
          (try? dealer.set([.linger(milliseconds: 0), .routingID([3, UInt8(index)])])) != nil,
          (try? dealer.connect(endpoint)) != nil
        else { return }
        let payload = [UInt8](repeating: 5, count: size)
        // A send blocks at most 100 ms: once the router is gone it would wait forever.
        _ = try? dealer.set([.sendTimeout(milliseconds: 100)])
        while !stop.value { _ = try? dealer.send(Message(bytes: payload)) }
      }
    }
    Sleep.milliseconds(200)  // connect and fill the pipes
    let before = router.received.value
    let start = MonotonicClock.nanoseconds()
    Sleep.microseconds(Int(duration * 1e6))
    let after = router.received.value
    let elapsed = seconds(from: start)
    stop.set(true)
    router.shutdown()
    for done in finished { done.wait() }
    return Double(after - before) / elapsed
  }

  static func sizes(layers: Int) -> (push: Int, reply: Int) {
    let reply = WireMessage.weights(
      WeightsReply(
        version: 1, acknowledgedSequence: 1,
        parameters: NamedTensors(
          layout: [TensorSpec(name: "w", count: layers)],
          values: [Double](repeating: 0, count: layers))))
    return (
      WireCodec.encodedSize(of: push(layers: layers, worker: 0, sequence: 1, version: 0)),
      WireCodec.encodedSize(of: reply)
    )
  }

  /// Round trips are latency-bound and a single run on a shared VM swings by
  /// ±10%: pstrain and raw run alternately, 5 rounds of 1 s, and the medians
  /// are compared.
  static func roundTrip(quick: Bool) throws -> [BenchFigure] {
    let (duration, rounds) = quick ? (0.3, 1) : (1.0, 5)
    let (pushSize, replySize) = sizes(layers: 3)
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    return try [1, 4].map { clients in
      var ours: [Double] = []
      var raw: [Double] = []
      for _ in 0..<rounds {
        ours.append(try pstrainRate(layers: 3, clients: clients, inFlight: 1, duration: duration))
        raw.append(
          try rawRate(
            requestSize: pushSize, replySize: replySize, clients: clients, inFlight: 1,
            duration: duration))
      }
      let (oursMedian, rawMedian) = (median(ours), median(raw))
      return BenchFigure(
        suite: "roundtrip", name: "push+reply, \(clients) worker(s), batch 1", value: oursMedian,
        unit: "round trips/s", baseline: rawMedian, baselineName: "raw libzmq DEALER/ROUTER",
        note:
          "medians of \(rounds) alternating rounds; \(pushSize) B request, \(replySize) B reply; mean latency \(String(format: "%.0f", Double(clients) / oursMedian * 1e6)) us"
      )
    }
  }

  static func pipelined(quick: Bool) throws -> [BenchFigure] {
    let duration = quick ? 0.3 : 1.5
    let (pushSize, _) = sizes(layers: 3)
    let ours = try pstrainRate(layers: 3, clients: 2, inFlight: 64, duration: duration)
    let framed = try pstrainRate(
      layers: 3, clients: 2, inFlight: 256, perFrame: 32, duration: duration)
    let raw = try rawOneWayRate(size: pushSize, clients: 2, duration: duration)
    return [
      BenchFigure(
        suite: "pipelined", name: "gradients applied, 2 clients, 64 in flight", value: ours,
        unit: "gradients/s", baseline: raw, baselineName: "raw libzmq one-way DEALER->ROUTER",
        note: "one push per frame, as pstrain worker --pipeline 64 sends them"),
      BenchFigure(
        suite: "pipelined", name: "gradients applied, 2 clients, 256 in flight, 32 per frame",
        value: framed, unit: "gradients/s", baseline: raw,
        baselineName: "raw libzmq one-way DEALER->ROUTER",
        note:
          "as pstrain worker --pipeline 256 --pushes-per-frame 32 sends them; baseline in messages/s"
      ),
    ]
  }

  static func transfer(quick: Bool) throws -> [BenchFigure] {
    let layers = 4 << 20 / 8  // 4 MiB of Float64
    let duration = quick ? 0.5 : 2
    let (pushSize, replySize) = sizes(layers: layers)
    let ours = try pstrainRate(layers: layers, clients: 1, inFlight: 1, duration: duration)
    let raw = try rawRate(
      requestSize: pushSize, replySize: replySize, clients: 1, inFlight: 1, duration: duration)
    let rawByReference = try rawRate(
      requestSize: pushSize, replySize: replySize, clients: 1, inFlight: 1, duration: duration,
      zeroCopy: true)
    let mebibytes = Double(pushSize + replySize) / Double(1 << 20)
    return [
      BenchFigure(
        suite: "transfer", name: "4 MiB gradient push + 4 MiB weights reply",
        value: ours * mebibytes,
        unit: "MiB/s", baseline: raw * mebibytes, baselineName: "raw libzmq 4 MiB each way",
        note: String(format: "%.1f vs %.1f round trips/s", ours, raw)),
      BenchFigure(
        suite: "transfer", name: "4 MiB gradient push + 4 MiB weights reply",
        value: ours * mebibytes, unit: "MiB/s", baseline: rawByReference * mebibytes,
        baselineName: "raw libzmq 4 MiB each way, sent by reference (zmq_msg_init_data)",
        note: String(
          format: "%.1f vs %.1f round trips/s; the raw loops never read what they receive", ours,
          rawByReference)),
    ]
  }
}
