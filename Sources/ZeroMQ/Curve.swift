import CZeroMQ

/// CurveZMQ keys: 32-byte Curve25519 keys, written as 40-character Z85 text.
public enum Curve {
  /// Whether this libzmq was built with CURVE support.
  public static var isAvailable: Bool { zmq_has("curve") != 0 }

  /// A new key pair, as Z85 text.
  public static func keyPair() throws(ZMQError) -> (publicKey: String, secretKey: String) {
    var publicKey = [CChar](repeating: 0, count: 41)
    var secretKey = [CChar](repeating: 0, count: 41)
    guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
      throw ZMQError.last("zmq_curve_keypair")
    }
    defer { for index in secretKey.indices { secretKey[index] = 0 } }
    return (string(publicKey), string(secretKey))
  }

  /// The public key that belongs to a Z85 secret key.
  public static func publicKey(forSecretKey secret: String) throws(ZMQError) -> String {
    var publicKey = [CChar](repeating: 0, count: 41)
    guard zmq_curve_public(&publicKey, secret) == 0 else { throw ZMQError.last("zmq_curve_public") }
    return string(publicKey)
  }

  /// The 32 bytes of a 40-character Z85 key, or nil if it is not one.
  public static func decode(_ z85: String) -> [UInt8]? {
    guard z85.utf8.count == 40 else { return nil }
    var bytes = [UInt8](repeating: 0, count: 32)
    guard zmq_z85_decode(&bytes, z85) != nil else { return nil }
    return bytes
  }

  /// The 40-character Z85 text of a 32-byte key.
  public static func encode(_ key: [UInt8]) -> String? {
    guard key.count == 32 else { return nil }
    var text = [CChar](repeating: 0, count: 41)
    guard zmq_z85_encode(&text, key, 32) != nil else { return nil }
    return string(text)
  }

  private static func string(_ characters: [CChar]) -> String {
    String(
      decoding: characters.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
