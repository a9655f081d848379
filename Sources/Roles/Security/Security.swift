import Synchronization
import ZeroMQ

/// A server's CURVE settings: its key pair and the client keys it lets in.
public struct ServerSecurity: Sendable {
  /// The server's key pair.
  public var keyPair: CurveKeyFiles.KeyPair
  /// Public keys of the clients allowed to connect.
  public var authorizedKeys: Set<[UInt8]>

  /// CURVE settings for a server.
  public init(keyPair: CurveKeyFiles.KeyPair, authorizedKeys: Set<[UInt8]>) {
    self.keyPair = keyPair
    self.authorizedKeys = authorizedKeys
  }

  var socketOptions: [SocketOption] {
    [.curveServer(true), .curveSecretKey(keyPair.secretKey), .zapDomain("pstrain")]
  }

  /// Starts the ZAP handler that admits authorized keys only, logging each
  /// refused key once.
  func startAuthenticator(context: Context, log: @escaping @Sendable (String) -> Void)
    throws(ZMQError) -> ZAPHandler
  {
    let authorized = authorizedKeys
    let refused = RefusedKeys()
    return try ZAPHandler(context: context) { request in
      if request.mechanism == "CURVE" && authorized.contains(request.credentials) { return true }
      if refused.isNew(request.credentials) {
        let who = Curve.encode(request.credentials).map { "key \($0)" } ?? "no CURVE key"
        log(
          "refused a \(request.mechanism) connection from \(request.address): \(who) is not authorized"
        )
      }
      return false
    }
  }
}

/// Keys already reported as refused, so each is logged once.
private final class RefusedKeys: Sendable {
  private let seen = Mutex<Set<[UInt8]>>([])

  func isNew(_ key: [UInt8]) -> Bool { seen.withLock { $0.insert(key).inserted } }
}

/// A client's CURVE settings: its key pair and the server's public key.
public struct ClientSecurity: Sendable {
  /// The client's key pair.
  public var keyPair: CurveKeyFiles.KeyPair
  /// The server's public key.
  public var serverKey: [UInt8]

  /// CURVE settings for a client.
  public init(keyPair: CurveKeyFiles.KeyPair, serverKey: [UInt8]) {
    self.keyPair = keyPair
    self.serverKey = serverKey
  }

  var socketOptions: [SocketOption] {
    [
      .curveServerKey(serverKey), .curvePublicKey(keyPair.publicKey),
      .curveSecretKey(keyPair.secretKey),
    ]
  }
}
