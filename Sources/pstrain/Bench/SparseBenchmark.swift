import Foundation
import Roles
import SystemCalls
import TrainingMath
import WireProtocol
import ZeroMQ

/// `bench sparse`: a worker's sparse round trip — `sparse-pull` of N sorted
/// keys answered with their rows, then `sparse-push` of the gradient rows on
/// the cached key list answered with `sparse-ack` — over ZeroMQ on tcp
/// loopback, against raw libzmq DEALER/ROUTER moving the same bytes in the
/// same run.
enum SparseBenchmark {
  /// What was measured.
  struct Result {
    var keys: Int
    var valueLength: Int
    /// pstrain round trips (pull + push) per second, and raw ones.
    var roundTrips: Double
    var rawRoundTrips: Double
    /// Bytes of the four messages of one round trip.
    var bytesPerRoundTrip: Int

    var keysPerSecond: Double { roundTrips * Double(keys) }
    var rawKeysPerSecond: Double { rawRoundTrips * Double(keys) }

    var json: String {
      "{\"keys\":\(keys),\"value_length\":\(valueLength),"
        + "\"keys_per_s\":\(JSON.number(keysPerSecond)),"
        + "\"raw_keys_per_s\":\(JSON.number(rawKeysPerSecond)),"
        + "\"round_trips_per_s\":\(JSON.number(roundTrips)),"
        + "\"raw_round_trips_per_s\":\(JSON.number(rawRoundTrips)),"
        + "\"bytes_per_round_trip\":\(bytesPerRoundTrip),"
        + "\"ratio\":\(JSON.number(rawKeysPerSecond > 0 ? keysPerSecond / rawKeysPerSecond : 0))}"
    }
  }

  /// The server side: answers one decoded request (`parameterServer`: the real
  /// server's state machine).
  typealias Responder = (WireMessage) -> WireMessage

  /// A ROUTER on its own thread answering every request with the frames the
  /// handler `make` builds there returns for the request's frames (after the
  /// peer's routing id).
  final class RouterThread: Sendable {
    let endpoint: String
    private let thread: SocketThread

    init(make: @escaping @Sendable () -> ([Message]) -> [Message]) throws {
      let bound = Shared<String?>(nil)
      let ready = DispatchSemaphore(value: 0)
      thread = SocketThread { thread in
        guard let context = try? Context(), let router = try? Socket(context, kind: .router),
          (try? router.set([.linger(milliseconds: 0)])) != nil,
          (try? router.bind("tcp://127.0.0.1:*")) != nil
        else {
          ready.signal()
          return
        }
        // The responder (a server warmed with the keys) is made before the bench
        // is told the endpoint: the timing must not include it.
        let handle = make()
        bound.set(try? router.lastEndpoint())
        ready.signal()
        while !thread.isStopping {
          guard (try? router.waitForInput(timeoutMilliseconds: 50)) == true else { continue }
          while let request = try? router.receiveMultipart(.dontWait) {
            _ = try? router.send(
              multipart: [Message(bytes: request.frames[0].bytes)]
                + handle(Array(request.frames.dropFirst())))
          }
        }
      }
      ready.wait()
      guard let endpoint = bound.value else {
        throw Failure(message: "sparse bench router did not start")
      }
      self.endpoint = endpoint
    }

    func shutdown() { thread.stop() }

    /// A router that decodes every request with `WireCodec`, answers it with
    /// the responder `make` builds, and encodes the reply (values in frames of
    /// their own, as pstrain sends them).
    static func decoding(make: @escaping @Sendable () -> Responder) throws -> RouterThread {
      try RouterThread {
        let respond = make()
        return { frames in
          let reply: WireMessage
          switch Swift.Result(catching: { () throws(DecodeError) in
            try WireCodec.decode(frames: frames.map(\.bytes))
          }) {
          case .success(let request): reply = respond(request)
          case .failure(let error):
            reply = .error(ErrorReply(code: error.code, message: error.description))
          }
          return WireCodec.encodeFrames(reply).map { Message(bytes: $0) }
        }
      }
    }
  }

  /// A DEALER connected to `endpoint`, and the context it lives in.
  static func connectedDealer(_ endpoint: String) -> (Context, Socket)? {
    guard let context = try? Context(), let dealer = try? Socket(context, kind: .dealer),
      (try? dealer.set([.linger(milliseconds: 0)])) != nil, (try? dealer.connect(endpoint)) != nil
    else { return nil }
    return (context, dealer)
  }

  /// `sets` lists of `keys` random sorted keys below 2^40.
  static func keySets(keys: Int, sets: Int, seed: UInt64) -> [[UInt64]] {
    var generator = SplitMix64(seed: seed)
    return (0..<sets).map { _ in
      var chosen = Set<UInt64>()
      while chosen.count < keys { chosen.insert(generator.next() >> 24) }
      return chosen.sorted()
    }
  }

  /// pstrain round trips per second: pull with the keys cached, push on the cached list.
  static func pstrainRate(
    keySets: [[UInt64]], duration: Double, respond: @escaping @Sendable () -> Responder
  ) throws -> Double {
    let server = try RouterThread.decoding(make: respond)
    defer { server.shutdown() }
    let endpoint = server.endpoint
    let rate = Shared(0.0)
    onThread {
      guard let (context, dealer) = connectedDealer(endpoint) else { return }
      defer { withExtendedLifetime(context) {} }
      func exchange(_ message: WireMessage) -> WireMessage? {
        guard
          (try? dealer.send(multipart: WireCodec.encodeFrames(message).map { Message(bytes: $0) }))
            != nil,
          (try? dealer.waitForInput(timeoutMilliseconds: 5000)) == true,
          let reply = try? dealer.receiveMultipart()
        else { return nil }
        return try? WireCodec.decode(frames: reply.frames.map(\.bytes))
      }
      var sequence: UInt64 = 0
      var trips = 0
      let start = MonotonicClock.nanoseconds()
      let deadline = start + UInt64(duration * 1e9)
      while MonotonicClock.nanoseconds() < deadline {
        sequence += 1
        let keys = keySets[trips % keySets.count]
        let id = UInt32(1 + trips % 64)
        guard
          case .sparseRows(let rows)? = exchange(
            .sparsePull(SparsePull(workerID: 1, sequence: sequence, keys: .keys(keys, cacheAs: id)))
          )
        else { return }
        // The "gradient": a small step against the rows read.
        let gradients = rows.values.map { 1e-3 * $0 + 1e-6 }
        guard
          case .sparseAck? = exchange(
            .sparsePush(
              SparsePush(
                workerID: 1, sequence: sequence, computedAtVersion: rows.version, rows: [trips],
                keys: .cached(id: id, count: UInt32(keys.count)), gradients: gradients)))
        else { return }
        trips += 1
      }
      rate.set(Double(trips) / seconds(from: start))
    }.wait()
    return rate.value
  }

  /// The four message sizes of one round trip, as pstrain encodes them.
  static func messageSizes(keys: Int, valueLength: Int) -> [Int] {
    let keyList = [UInt64](0..<UInt64(keys))
    let values = [Double](repeating: 0.5, count: keys * valueLength)
    return [
      .sparsePull(SparsePull(workerID: 1, sequence: 1, keys: .keys(keyList, cacheAs: 1))),
      .sparseRows(SparseRows(version: 1, sequence: 1, width: UInt32(valueLength), values: values)),
      .sparsePush(
        SparsePush(
          workerID: 1, sequence: 1, computedAtVersion: 1, rows: [0],
          keys: .cached(id: 1, count: UInt32(keys)), gradients: values)),
      .sparseAck(SparseAck(version: 2, sequence: 1)),
    ].map(WireCodec.encodedSize(of:))
  }

  /// Raw round trips per second: a DEALER sends the pull's bytes, a ROUTER
  /// answers the rows' bytes; then the push's bytes and the ack's.
  static func rawRate(sizes: [Int], duration: Double) throws -> Double {
    let router = try RouterThread {
      let replies = [
        [UInt8](repeating: 7, count: sizes[1]), [UInt8](repeating: 7, count: sizes[3]),
      ]
      var answered = 0
      return { _ in
        answered += 1
        return [Message(bytes: replies[(answered - 1) % 2])]
      }
    }
    defer { router.shutdown() }
    let endpoint = router.endpoint
    let rate = Shared(0.0)
    onThread {
      guard let (context, dealer) = connectedDealer(endpoint) else { return }
      defer { withExtendedLifetime(context) {} }
      let requests = [
        [UInt8](repeating: 3, count: sizes[0]), [UInt8](repeating: 3, count: sizes[2]),
      ]
      var trips = 0
      let start = MonotonicClock.nanoseconds()
      let deadline = start + UInt64(duration * 1e9)
      while MonotonicClock.nanoseconds() < deadline {
        for request in requests {
          guard (try? dealer.send(Message(bytes: request))) != nil,
            (try? dealer.waitForInput(timeoutMilliseconds: 5000)) == true,
            (try? dealer.receive()) != nil
          else { return }
        }
        trips += 1
      }
      rate.set(Double(trips) / seconds(from: start))
    }.wait()
    return rate.value
  }

  /// The real server's state machine holding a sparse model whose rows are
  /// `valueLength` values (sparse-logreg for 1, else fm:(valueLength - 1)) over
  /// 2^40 keys with AdaGrad, joined by one worker, its rows of `keySets` created
  /// by a first push of zeros: each request is answered by `ParameterServer`.
  static func parameterServer(valueLength: Int, warmedWith keySets: [[UInt64]]) -> Responder {
    let model = try! SparseModelSpec(
      kind: valueLength == 1
        ? .logisticRegression : .factorizationMachine(factors: valueLength - 1),
      hashBits: 40)
    let keyed = KeyedModel(
      model: model, optimizer: SparseOptimizerSettings(kind: .adagrad, learningRate: 0.05), seed: 1)
    var configuration = ServerConfiguration(
      mode: .async, requiredWorkers: 1, optimizer: try! OptimizerSettings(learningRate: 0.05),
      model: keyed.descriptor, initialParameters: [Double](repeating: 0, count: valueLength))
    configuration.keyed = keyed
    let server = ParameterServer(configuration: configuration)
    // Worker 2 creates the rows with a push of zeros; worker 1 is the bench's.
    let (peer, warmer) = (PeerID([1]), PeerID([2]))
    for (worker, from) in [(UInt32(1), peer), (2, warmer)] {
      _ = server.receive(
        .join(
          Join(
            workerID: worker, shard: .whole, model: keyed.descriptor,
            dataset: DatasetIdentity(rows: 1 << 40, fingerprint: 0))), from: from, now: 0)
    }
    for (index, keys) in keySets.enumerated() {
      _ = server.receive(
        .sparsePush(
          SparsePush(
            workerID: 2, sequence: UInt64(index + 1), computedAtVersion: 0, rows: [0],
            keys: .keys(keys, cacheAs: 0),
            gradients: [Double](repeating: 0, count: keys.count * valueLength))), from: warmer,
        now: 0)
    }
    return { request in
      server.receive(request, from: peer, now: 0).first?.message
        ?? .error(ErrorReply(code: .unexpectedMessage, message: "no answer"))
    }
  }

  /// pstrain and raw alternately, `rounds` rounds each, medians compared
  /// (round trips are latency-bound and a shared VM swings).
  static func run(keys: Int, valueLength: Int, quick: Bool) throws -> Result {
    let (duration, rounds) = quick ? (0.3, 1) : (1.0, 3)
    let sets = keySets(keys: keys, sets: 8, seed: 2026)
    let sizes = messageSizes(keys: keys, valueLength: valueLength)
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    var ours: [Double] = []
    var raw: [Double] = []
    for _ in 0..<rounds {
      ours.append(
        try pstrainRate(keySets: sets, duration: duration) {
          parameterServer(valueLength: valueLength, warmedWith: sets)
        })
      raw.append(try rawRate(sizes: sizes, duration: duration))
    }
    return Result(
      keys: keys, valueLength: valueLength, roundTrips: median(ours), rawRoundTrips: median(raw),
      bytesPerRoundTrip: sizes.reduce(0, +))
  }

  /// The figures of `run`.
  static func figures(_ result: Result) -> [BenchFigure] {
    [
      BenchFigure(
        suite: "sparse",
        name: "pull + push of \(result.keys) keys x \(result.valueLength) values",
        value: result.keysPerSecond,
        unit: "keys/s", baseline: result.rawKeysPerSecond,
        baselineName: "raw libzmq DEALER/ROUTER, same bytes",
        note: String(
          format:
            "%.1f vs %.1f round trips/s; %d B per round trip; adagrad keyed table, its rows created before timing",
          result.roundTrips, result.rawRoundTrips, result.bytesPerRoundTrip))
    ]
  }
}
