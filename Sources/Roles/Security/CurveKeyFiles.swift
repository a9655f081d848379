import Foundation
import SystemCalls
import ZeroMQ

/// CURVE keys on disk. `NAME.key` holds a key pair and must be readable by its
/// owner only; `NAME.pub` holds the public key alone and may be shared. Both
/// are text: `public-key = <Z85>` and, in `.key`, `secret-key = <Z85>`.
/// Secret keys never appear in messages or logs, only the files' paths.
public enum CurveKeyFiles {
  /// A key pair read from a `.key` file.
  public struct KeyPair: Sendable {
    /// The public key, 32 bytes.
    public var publicKey: [UInt8]
    /// The secret key, 32 bytes.
    public var secretKey: [UInt8]
  }

  /// Writes a new key pair as `DIR/NAME.key` (mode 0600) and `DIR/NAME.pub`;
  /// refuses to overwrite existing files. Returns the two paths.
  public static func generate(directory: String, name: String) throws(RoleError) -> (
    secret: String, public: String
  ) {
    guard Curve.isAvailable else {
      throw .invalidArgument("this libzmq was built without CURVE support")
    }
    var prefix = directory.hasPrefix("/") ? "/" : ""
    for part in directory.split(separator: "/") {
      prefix += part + "/"
      do { try FileIO.makeDirectory(prefix, permissions: 0o700) } catch { throw .system(error) }
    }
    let pair: (publicKey: String, secretKey: String)
    do { pair = try Curve.keyPair() } catch { throw .transport(error) }
    let secretPath = "\(directory)/\(name).key"
    let publicPath = "\(directory)/\(name).pub"
    try write(
      "public-key = \(pair.publicKey)\nsecret-key = \(pair.secretKey)\n", to: secretPath,
      mode: 0o600)
    try write("public-key = \(pair.publicKey)\n", to: publicPath, mode: 0o644)
    return (secretPath, publicPath)
  }

  private static func write(_ text: String, to path: String, mode: UInt32) throws(RoleError) {
    do { try FileIO.createNew(Array(text.utf8), at: path, permissions: mode) } catch {
      throw .system(error)
    }
  }

  /// Reads a key pair, refusing a file that group or others can read.
  public static func readKeyPair(_ path: String) throws(RoleError) -> KeyPair {
    let permissions: UInt32
    do { permissions = try FileIO.status(path).permissions } catch {
      throw .system(error.describing("read secret key file"))
    }
    guard permissions & 0o077 == 0 else {
      throw .invalidArgument(
        "secret key file \(path) is readable by others (mode \(String(permissions & 0o777, radix: 8))); run chmod 600 \(path)"
      )
    }
    let fields = try fields(of: path)
    guard let secretText = fields["secret-key"], let secret = Curve.decode(secretText) else {
      throw .invalidArgument(
        "\(path) has no valid secret-key line; create keys with pstrain keygen")
    }
    let publicText: String
    do { publicText = try Curve.publicKey(forSecretKey: secretText) } catch {
      throw .invalidArgument("\(path) holds an unusable secret key")
    }
    return KeyPair(publicKey: Curve.decode(publicText)!, secretKey: secret)
  }

  /// Reads the public key of a `.pub` (or `.key`) file.
  public static func readPublicKey(_ path: String) throws(RoleError) -> [UInt8] {
    guard let text = try fields(of: path)["public-key"], let key = Curve.decode(text) else {
      throw .invalidArgument(
        "\(path) has no valid public-key line; create keys with pstrain keygen")
    }
    return key
  }

  /// Every public key in the `.pub` files of `directory`.
  public static func authorizedKeys(in directory: String) throws(RoleError) -> Set<[UInt8]> {
    let names: [String]
    do { names = try FileIO.names(inDirectory: directory).filter { $0.hasSuffix(".pub") } } catch {
      throw .system(error.describing("read authorized keys directory"))
    }
    var keys = Set<[UInt8]>()
    for name in names { keys.insert(try readPublicKey("\(directory)/\(name)")) }
    guard !keys.isEmpty else {
      throw .invalidArgument("no .pub files in \(directory): no client could connect")
    }
    return keys
  }

  private static func fields(of path: String) throws(RoleError) -> [String: String] {
    var buffer: [UInt8]
    do { buffer = try FileIO.read(path, limit: 4096) } catch { throw .system(error) }
    guard !buffer.isEmpty else { throw .invalidArgument("\(path) is empty or unreadable") }
    var result: [String: String] = [:]
    for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") {
      let parts = line.split(separator: "=", maxSplits: 1).map {
        $0.trimmingCharacters(in: .whitespacesAndNewlines)
      }
      if parts.count == 2 { result[parts[0]] = parts[1] }
    }
    for index in buffer.indices { buffer[index] = 0 }
    return result
  }
}
