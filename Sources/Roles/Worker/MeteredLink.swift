import WireProtocol

/// A worker's link to the server that passes messages through and tells its
/// `WorkerMetrics` about them: pushes counted and timed to their answer, dense
/// and sparse alike.
struct MeteredLink {
  let link: any ServerLink
  let metrics: WorkerMetrics

  var endpoint: String { link.endpoint }

  func send(_ message: WireMessage) throws(RoleError) {
    metrics.sent(message)
    try link.send(message)
  }

  func receive(timeoutMilliseconds: Int, graceAfterStopMilliseconds: Int?) throws(RoleError)
    -> WireMessage?
  {
    let message = try link.receive(
      timeoutMilliseconds: timeoutMilliseconds,
      graceAfterStopMilliseconds: graceAfterStopMilliseconds)
    if let message { metrics.received(message) }
    return message
  }
}
