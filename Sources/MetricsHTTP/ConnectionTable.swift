import NIOCore
import Synchronization

/// Where a connection is in its request cycle; each phase has its own deadline.
enum ConnectionPhase: Sendable {
  /// Connected, no request yet: the head must arrive within `requestHeadSeconds`.
  case opened
  /// Part of a further request head arrived: the rest must follow within `requestHeadSeconds`.
  case readingHead
  /// Responses are being written: the client must take them within `responseSeconds`.
  case answering
  /// Kept alive between requests: closed after `idleSeconds`.
  case idle
}

/// The kinds of client the endpoint refuses, each logged once.
enum Refusal: Sendable, Hashable {
  case requestHeadTooLarge, methodNotAllowed, bodyRefused, malformed, connectionCap
  case slowRequest, unreadResponse

  func explanation(_ limits: MetricsHTTPLimits) -> String {
    switch self {
    case .requestHeadTooLarge:
      "send a request line and headers over \(limits.maximumRequestHeadBytes) bytes (answered 431, closed)"
    case .methodNotAllowed: "use a method other than GET or HEAD (answered 405, closed)"
    case .bodyRefused: "send a request body (answered 413, closed)"
    case .malformed: "send malformed HTTP (answered 400, closed)"
    case .connectionCap:
      "open more than \(limits.maximumConnections) connections at once (closed the oldest that was not being answered)"
    case .slowRequest:
      "send no complete request head within \(limits.requestHeadSeconds) s (closed)"
    case .unreadResponse:
      "do not read their responses (none taken within \(limits.responseSeconds) s, or over \(limits.maximumPendingResponses) pipelined requests waiting; closed)"
    }
  }
}

/// Says once per kind of refusal that the endpoint refused a client, so an operator
/// learns why a client got no metrics without a line per hostile request.
final class RefusalLog: Sendable {
  private let log: @Sendable (String) -> Void
  private let said = Mutex<Set<Refusal>>([])

  init(log: @escaping @Sendable (String) -> Void) { self.log = log }

  func note(_ refusal: Refusal, peer: SocketAddress?, limits: MetricsHTTPLimits) {
    guard said.withLock({ $0.insert(refusal).inserted }) else { return }
    log(
      "metrics endpoint refuses clients that \(refusal.explanation(limits)); first: \(peer.flatMap { address in address.ipAddress.map { "\($0) port \(address.port ?? 0)" } } ?? "unknown peer"); said once"
    )
  }
}

/// Every open connection with its phase and deadline: enforces the connection cap and the
/// timeouts (swept every quarter second on the event loop).
final class ConnectionTable: Sendable {
  struct Entry {
    let channel: any Channel
    let opened: NIODeadline
    var phase: ConnectionPhase
    var deadline: NIODeadline
    var served: Int
  }

  let limits: MetricsHTTPLimits
  let refusals: RefusalLog
  private let entries = Mutex<[ObjectIdentifier: Entry]>([:])

  init(limits: MetricsHTTPLimits, refusals: RefusalLog) {
    self.limits = limits
    self.refusals = refusals
  }

  /// Registers a new connection; over the cap, closes the connection that matters least:
  /// not being answered before being answered, never served before served, oldest first.
  func admit(_ channel: any Channel) -> Connection {
    let id = ObjectIdentifier(channel)
    let now = NIODeadline.now()
    let victim = entries.withLock { entries -> (any Channel)? in
      entries[id] = Entry(
        channel: channel, opened: now, phase: .opened,
        deadline: now + .seconds(limits.requestHeadSeconds), served: 0)
      guard entries.count > limits.maximumConnections else { return nil }
      let chosen = entries.filter { $0.key != id }.min { left, right in
        let (l, r) = (left.value, right.value)
        return (l.phase == .answering ? 1 : 0, l.served > 0 ? 1 : 0, l.opened)
          < (r.phase == .answering ? 1 : 0, r.served > 0 ? 1 : 0, r.opened)
      }
      guard let chosen else { return nil }
      entries[chosen.key] = nil
      return chosen.value.channel
    }
    channel.closeFuture.whenComplete { [self] _ in
      _ = entries.withLock { $0.removeValue(forKey: id) }
    }
    if let victim {
      refusals.note(.connectionCap, peer: victim.remoteAddress, limits: limits)
      victim.close(promise: nil)
    }
    return Connection(id: id, channel: channel, table: self)
  }

  /// Moves a connection to `phase` with that phase's deadline. `.readingHead` applies only
  /// to an idle connection (a connection's first head keeps the deadline it opened with).
  func enter(_ phase: ConnectionPhase, id: ObjectIdentifier) {
    let now = NIODeadline.now()
    entries.withLock { entries in
      guard var entry = entries[id] else { return }
      switch phase {
      case .opened: return
      case .readingHead:
        guard entry.phase == .idle else { return }
        entry.deadline = now + .seconds(limits.requestHeadSeconds)
      case .answering:
        // Pipelined requests do not extend the time the client has to take the first answer.
        guard entry.phase != .answering else { return }
        entry.deadline = now + .seconds(limits.responseSeconds)
      case .idle:
        entry.served += 1
        entry.deadline = now + .seconds(limits.idleSeconds)
      }
      entry.phase = phase
      entries[id] = entry
    }
  }

  /// Closes every connection past its deadline; says why for the phases a client controls.
  func closeExpired() {
    let now = NIODeadline.now()
    let expired = entries.withLock { entries -> [Entry] in
      let expired = entries.filter { $0.value.deadline <= now }
      for key in expired.keys { entries[key] = nil }
      return Array(expired.values)
    }
    for entry in expired {
      switch entry.phase {
      case .opened, .readingHead:
        refusals.note(.slowRequest, peer: entry.channel.remoteAddress, limits: limits)
      case .answering:
        refusals.note(.unreadResponse, peer: entry.channel.remoteAddress, limits: limits)
      case .idle: break
      }
      entry.channel.close(promise: nil)
    }
  }
}

/// One connection's handle on the table, shared by its handlers.
struct Connection: Sendable {
  let id: ObjectIdentifier
  let channel: any Channel
  let table: ConnectionTable

  var limits: MetricsHTTPLimits { table.limits }

  func enter(_ phase: ConnectionPhase) { table.enter(phase, id: id) }

  func refuse(_ refusal: Refusal) {
    table.refusals.note(refusal, peer: channel.remoteAddress, limits: table.limits)
  }
}
