import ZeroMQ

/// The socket options every pstrain socket uses.
public enum SocketDefaults {
  /// ZMTP heartbeat interval: a silent peer is noticed within `heartbeatTimeout`.
  public static let heartbeatInterval: Int32 = 1000
  /// ZMTP heartbeat timeout.
  public static let heartbeatTimeout: Int32 = 5000
  /// How long closing may wait to deliver the last queued messages. Never 0:
  /// LINGER 0 drops the final reply or leave.
  public static let linger: Int32 = 2000

  /// Options shared by both ends.
  static func common() -> [SocketOption] {
    [
      .linger(milliseconds: linger),
      .heartbeatInterval(milliseconds: heartbeatInterval),
      .heartbeatTimeout(milliseconds: heartbeatTimeout),
      .heartbeatTTL(milliseconds: heartbeatTimeout),
      .sendHighWaterMark(10_000),
      .receiveHighWaterMark(10_000),
    ]
  }

  /// The server's ROUTER: refuse oversize frames, report unroutable replies.
  static func server(maximumMessageSize: Int64) -> [SocketOption] {
    common() + [
      .maximumMessageSize(maximumMessageSize), .routerMandatory(true), .routerHandover(true),
    ]
  }

  /// A client's DEALER: reconnect quickly, back off to 2 s.
  static func client(maximumMessageSize: Int64) -> [SocketOption] {
    common() + [
      .maximumMessageSize(maximumMessageSize),
      .reconnectInterval(milliseconds: 100),
      .reconnectIntervalMax(milliseconds: 2000),
    ]
  }

  /// A frame limit that fits a message carrying `parameterCount` Float64 values
  /// twice (weights and gradient) plus samples and headers.
  public static func maximumMessageSize(parameterCount: Int) -> Int64 {
    Int64(64 << 20) + Int64(parameterCount) * 16
  }
}
