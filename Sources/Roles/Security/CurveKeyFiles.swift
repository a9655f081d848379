import Foundation
import ZeroMQ

#if canImport(Glibc)
  import Glibc
#endif

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
      if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
        throw .invalidArgument("cannot create \(prefix): \(String(cString: strerror(errno)))")
      }
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

  private static func write(_ text: String, to path: String, mode: mode_t) throws(RoleError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else {
      throw .invalidArgument("cannot create \(path): \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ SwiftGlibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count,
      fsync(fd) == 0
    else {
      throw .invalidArgument("cannot write \(path): \(String(cString: strerror(errno)))")
    }
  }

  /// Reads a key pair, refusing a file that group or others can read.
  public static func readKeyPair(_ path: String) throws(RoleError) -> KeyPair {
    var info = stat()
    guard stat(path, &info) == 0 else {
      throw .invalidArgument(
        "cannot read secret key file \(path): \(String(cString: strerror(errno)))")
    }
    guard info.st_mode & 0o077 == 0 else {
      throw .invalidArgument(
        "secret key file \(path) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 600 \(path)"
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
    guard let handle = opendir(directory) else {
      throw .invalidArgument(
        "cannot read authorized keys directory \(directory): \(String(cString: strerror(errno)))")
    }
    var names: [String] = []
    while let entry = readdir(handle) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) {
        String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
      }
      if name.hasSuffix(".pub") { names.append(name) }
    }
    closedir(handle)
    var keys = Set<[UInt8]>()
    for name in names { keys.insert(try readPublicKey("\(directory)/\(name)")) }
    guard !keys.isEmpty else {
      throw .invalidArgument("no .pub files in \(directory): no client could connect")
    }
    return keys
  }

  private static func fields(of path: String) throws(RoleError) -> [String: String] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      throw .invalidArgument("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { SwiftGlibc.read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { throw .invalidArgument("\(path) is empty or unreadable") }
    var result: [String: String] = [:]
    for line in String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n") {
      let parts = line.split(separator: "=", maxSplits: 1).map {
        $0.trimmingCharacters(in: .whitespacesAndNewlines)
      }
      if parts.count == 2 { result[parts[0]] = parts[1] }
    }
    for index in buffer.indices { buffer[index] = 0 }
    return result
  }
}
