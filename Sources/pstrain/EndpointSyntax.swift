import ArgumentParser

/// Checks a ZeroMQ endpoint given to `flag` before any socket sees it, so a typo gets
/// a sentence instead of an errno: `tcp://HOST:PORT` (PORT 1...65535, or `*` for any
/// free port when `binding`), `ipc://PATH` or `inproc://NAME`.
func validateEndpoint(_ endpoint: String, flag: String, binding: Bool) throws {
  let example = binding ? "tcp://*:5555" : "tcp://10.0.0.5:5555"
  guard let schemeEnd = endpoint.range(of: "://") else {
    throw ValidationError("\(flag) needs an endpoint such as \(example), got \"\(endpoint)\"")
  }
  let scheme = endpoint[..<schemeEnd.lowerBound]
  let address = endpoint[schemeEnd.upperBound...]
  switch scheme {
  case "ipc", "inproc":
    guard !address.isEmpty else {
      throw ValidationError("\(flag) \(endpoint) names no \(scheme) path")
    }
  case "tcp":
    // The port follows the last colon (an IPv6 host is in brackets: tcp://[::1]:5555).
    guard let colon = address.lastIndex(of: ":"), !address.hasSuffix("]") else {
      throw ValidationError("\(flag) \(endpoint) has no port: add one, as in \(endpoint):5555")
    }
    let host = address[..<colon]
    let port = address[address.index(after: colon)...]
    guard !host.isEmpty else {
      throw ValidationError("\(flag) \(endpoint) has no host; write it as \(example)")
    }
    if binding && port == "*" { return }
    guard let number = Int(port), (1...65_535).contains(number) else {
      throw ValidationError(
        "\(flag) \(endpoint): the port must be 1...65535\(binding ? " or *" : ""), got \"\(port)\"")
    }
  default:
    throw ValidationError(
      "\(flag) \(endpoint): unknown transport \"\(scheme)\"; use tcp://, ipc:// or inproc://")
  }
}
