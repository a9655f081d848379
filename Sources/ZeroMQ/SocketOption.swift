import CZeroMQ

/// The socket options pstrain sets, typed so that a wrong unit or type cannot
/// reach libzmq. Durations are in milliseconds, as libzmq takes them.
public enum SocketOption: Sendable, Equatable {
  /// How long `close` may wait to deliver queued messages (ZMQ_LINGER; -1 forever).
  case linger(milliseconds: Int32)
  /// Queued outgoing messages per peer before the socket blocks or drops (ZMQ_SNDHWM).
  case sendHighWaterMark(Int32)
  /// Queued incoming messages per peer before libzmq stops reading (ZMQ_RCVHWM).
  case receiveHighWaterMark(Int32)
  /// First reconnect delay after a lost connection (ZMQ_RECONNECT_IVL).
  case reconnectInterval(milliseconds: Int32)
  /// Upper bound of the exponential reconnect back-off (ZMQ_RECONNECT_IVL_MAX).
  case reconnectIntervalMax(milliseconds: Int32)
  /// Interval between ZMTP PING commands (ZMQ_HEARTBEAT_IVL; 0 disables).
  case heartbeatInterval(milliseconds: Int32)
  /// How long to wait for a PONG before closing the connection (ZMQ_HEARTBEAT_TIMEOUT).
  case heartbeatTimeout(milliseconds: Int32)
  /// The time-to-live this side asks the peer to apply (ZMQ_HEARTBEAT_TTL).
  case heartbeatTTL(milliseconds: Int32)
  /// Largest inbound message accepted; larger ones drop the connection (ZMQ_MAXMSGSIZE; -1 none).
  case maximumMessageSize(Int64)
  /// This socket's identity as its ROUTER peers see it (ZMQ_ROUTING_ID, 1 to 255 bytes).
  case routingID([UInt8])
  /// Make a ROUTER fail with EHOSTUNREACH instead of silently dropping (ZMQ_ROUTER_MANDATORY).
  case routerMandatory(Bool)
  /// Let a new connection with a routing id in use take it over (ZMQ_ROUTER_HANDOVER),
  /// so a client that reconnects keeps its identity.
  case routerHandover(Bool)
  /// Blocking send timeout (ZMQ_SNDTIMEO; -1 forever).
  case sendTimeout(milliseconds: Int32)
  /// Blocking receive timeout (ZMQ_RCVTIMEO; -1 forever).
  case receiveTimeout(milliseconds: Int32)
  /// Queue messages only to completed connections (ZMQ_IMMEDIATE).
  case immediate(Bool)
  /// Act as a CURVE server (ZMQ_CURVE_SERVER).
  case curveServer(Bool)
  /// This socket's long-term CURVE public key, 32 bytes (ZMQ_CURVE_PUBLICKEY).
  case curvePublicKey([UInt8])
  /// This socket's long-term CURVE secret key, 32 bytes (ZMQ_CURVE_SECRETKEY).
  case curveSecretKey([UInt8])
  /// The server's CURVE public key a client expects, 32 bytes (ZMQ_CURVE_SERVERKEY).
  case curveServerKey([UInt8])
  /// The ZAP authentication domain (ZMQ_ZAP_DOMAIN).
  case zapDomain(String)

  /// The option's libzmq name, for error messages.
  var name: String {
    switch self {
    case .linger: "ZMQ_LINGER"
    case .sendHighWaterMark: "ZMQ_SNDHWM"
    case .receiveHighWaterMark: "ZMQ_RCVHWM"
    case .reconnectInterval: "ZMQ_RECONNECT_IVL"
    case .reconnectIntervalMax: "ZMQ_RECONNECT_IVL_MAX"
    case .heartbeatInterval: "ZMQ_HEARTBEAT_IVL"
    case .heartbeatTimeout: "ZMQ_HEARTBEAT_TIMEOUT"
    case .heartbeatTTL: "ZMQ_HEARTBEAT_TTL"
    case .maximumMessageSize: "ZMQ_MAXMSGSIZE"
    case .routingID: "ZMQ_ROUTING_ID"
    case .routerMandatory: "ZMQ_ROUTER_MANDATORY"
    case .routerHandover: "ZMQ_ROUTER_HANDOVER"
    case .sendTimeout: "ZMQ_SNDTIMEO"
    case .receiveTimeout: "ZMQ_RCVTIMEO"
    case .immediate: "ZMQ_IMMEDIATE"
    case .curveServer: "ZMQ_CURVE_SERVER"
    case .curvePublicKey: "ZMQ_CURVE_PUBLICKEY"
    case .curveSecretKey: "ZMQ_CURVE_SECRETKEY"
    case .curveServerKey: "ZMQ_CURVE_SERVERKEY"
    case .zapDomain: "ZMQ_ZAP_DOMAIN"
    }
  }

  /// The libzmq option number and its value as raw bytes.
  var encoded: (option: Int32, value: [UInt8]) {
    func int32(_ value: Int32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
    func bool(_ value: Bool) -> [UInt8] { int32(value ? 1 : 0) }
    switch self {
    case .linger(let ms): return (ZMQ_LINGER, int32(ms))
    case .sendHighWaterMark(let n): return (ZMQ_SNDHWM, int32(n))
    case .receiveHighWaterMark(let n): return (ZMQ_RCVHWM, int32(n))
    case .reconnectInterval(let ms): return (ZMQ_RECONNECT_IVL, int32(ms))
    case .reconnectIntervalMax(let ms): return (ZMQ_RECONNECT_IVL_MAX, int32(ms))
    case .heartbeatInterval(let ms): return (ZMQ_HEARTBEAT_IVL, int32(ms))
    case .heartbeatTimeout(let ms): return (ZMQ_HEARTBEAT_TIMEOUT, int32(ms))
    case .heartbeatTTL(let ms): return (ZMQ_HEARTBEAT_TTL, int32(ms))
    case .maximumMessageSize(let n): return (ZMQ_MAXMSGSIZE, withUnsafeBytes(of: n) { Array($0) })
    case .routingID(let id): return (ZMQ_ROUTING_ID, id)
    case .routerMandatory(let on): return (ZMQ_ROUTER_MANDATORY, bool(on))
    case .routerHandover(let on): return (ZMQ_ROUTER_HANDOVER, bool(on))
    case .sendTimeout(let ms): return (ZMQ_SNDTIMEO, int32(ms))
    case .receiveTimeout(let ms): return (ZMQ_RCVTIMEO, int32(ms))
    case .immediate(let on): return (ZMQ_IMMEDIATE, bool(on))
    case .curveServer(let on): return (ZMQ_CURVE_SERVER, bool(on))
    case .curvePublicKey(let key): return (ZMQ_CURVE_PUBLICKEY, key)
    case .curveSecretKey(let key): return (ZMQ_CURVE_SECRETKEY, key)
    case .curveServerKey(let key): return (ZMQ_CURVE_SERVERKEY, key)
    case .zapDomain(let domain): return (ZMQ_ZAP_DOMAIN, Array(domain.utf8))
    }
  }
}
