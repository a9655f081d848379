import TrainingMath

/// Every message of the pstrain protocol. One message is one ZeroMQ frame;
/// `docs/protocol.md` gives the byte layout of each.
public enum WireMessage: Equatable, Sendable {
  /// Worker → server: join the run; answered with `.weights`.
  case join(Join)
  /// Worker → server: a gradient; answered with `.weights` after it is applied.
  case push(GradientPush)
  /// Server → worker: the current parameters and their version.
  case weights(WeightsReply)
  /// Anyone → server: ask for `.status`.
  case statusRequest
  /// Server → client: the server's state.
  case status(ServerStatus)
  /// Coordinator → server: start, renew or (every = 0) end an audit subscription.
  case auditSubscribe(AuditSubscription)
  /// Server → coordinator: the state of the subscription; sent after every record it covers.
  case subscription(SubscriptionState)
  /// Server → coordinator: one applied gradient with the weights it was computed at.
  case auditRecord(AuditRecord)
  /// Worker → server: the worker is done and leaves the membership.
  case leave(workerID: UInt32)
  /// Server → worker: the leave was accepted.
  case left(workerID: UInt32)
  /// Server → client: the request was refused; nothing changed.
  case error(ErrorReply)
  /// Worker → server: still alive while waiting (no reply).
  case heartbeat(workerID: UInt32)
  /// Worker → server: ask for rows to train on (leased work distribution).
  case leaseRequest(workerID: UInt32)
  /// Server → worker: rows leased to the worker.
  case lease(Lease)
  /// Server → worker: no rows to lease now (retry later) or ever (training finished).
  case noLease(NoLease)
  /// Coordinator → server: the verdict of one audit, for `status` (no reply).
  case auditResult(AuditResult)
  /// Worker → server (async mode): 2 to 256 gradients of one worker in one
  /// frame, with consecutive sequence numbers, applied in order as if pushed one
  /// by one, or all refused; answered with one `.weights` acknowledging the last.
  case pushes([GradientPush])
  /// Coordinator → server: how the model did on held-out data at a version,
  /// for `status` and the server's metrics (no reply; the latest is kept).
  case evaluation(EvaluationReport)
  /// Worker → server: rows of sorted unique keys of a sparse model; answered with `.sparseRows`.
  case sparsePull(SparsePull)
  /// Server → worker: the rows a `.sparsePull` asked for.
  case sparseRows(SparseRows)
  /// Worker → server: gradient rows of a sparse model's keys; answered with `.sparseAck`.
  case sparsePush(SparsePush)
  /// Server → worker: a `.sparsePush` was applied.
  case sparseAck(SparseAck)
  /// Server → coordinator: one shard's part of an applied sparse push, to audit.
  case sparseAuditRecord(SparseAuditRecord)

  /// The message's type, as written in its header.
  public var type: MessageType {
    switch self {
    case .join: .join
    case .push: .push
    case .weights: .weights
    case .statusRequest: .statusRequest
    case .status: .status
    case .auditSubscribe: .auditSubscribe
    case .subscription: .subscription
    case .auditRecord: .auditRecord
    case .leave: .leave
    case .left: .left
    case .error: .error
    case .heartbeat: .heartbeat
    case .leaseRequest: .leaseRequest
    case .lease: .lease
    case .noLease: .noLease
    case .auditResult: .auditResult
    case .pushes: .pushes
    case .evaluation: .evaluation
    case .sparsePull: .sparsePull
    case .sparseRows: .sparseRows
    case .sparsePush: .sparsePush
    case .sparseAck: .sparseAck
    case .sparseAuditRecord: .sparseAuditRecord
    }
  }
}

/// The type byte of a message header.
public enum MessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
  case join = 1
  case push = 2
  case weights = 3
  case statusRequest = 4
  case status = 5
  case auditSubscribe = 6
  case subscription = 7
  case auditRecord = 8
  case leave = 9
  case left = 10
  case error = 11
  case heartbeat = 12
  case leaseRequest = 13
  case lease = 14
  case noLease = 15
  case auditResult = 16
  case pushes = 17
  case evaluation = 18
  case sparsePull = 19
  case sparseRows = 20
  case sparsePush = 21
  case sparseAck = 22
  case sparseAuditRecord = 23

  public var description: String {
    switch self {
    case .join: "join"
    case .push: "push"
    case .weights: "weights"
    case .statusRequest: "status-request"
    case .status: "status"
    case .auditSubscribe: "audit-subscribe"
    case .subscription: "subscription"
    case .auditRecord: "audit-record"
    case .leave: "leave"
    case .left: "left"
    case .error: "error"
    case .heartbeat: "heartbeat"
    case .leaseRequest: "lease-request"
    case .lease: "lease"
    case .noLease: "no-lease"
    case .auditResult: "audit-result"
    case .pushes: "pushes"
    case .evaluation: "evaluation"
    case .sparsePull: "sparse-pull"
    case .sparseRows: "sparse-rows"
    case .sparsePush: "sparse-push"
    case .sparseAck: "sparse-ack"
    case .sparseAuditRecord: "sparse-audit-record"
    }
  }
}

extension WireMessage {
  /// Gradients the message carries: 1 for a push, n for n pushes, else 0.
  public var pushCount: Int {
    switch self {
    case .push: 1
    case .pushes(let pushes): pushes.count
    default: 0
    }
  }

  /// Whether the message's tensors are small enough to keep as decode storage
  /// (see `WireCodec.reusableElementLimit`).
  public var isWorthReusing: Bool {
    switch self {
    case .push(let push): push.gradient.values.count <= WireCodec.reusableElementLimit
    case .pushes(let pushes):
      pushes.count * (pushes.first?.gradient.values.count ?? 0) <= WireCodec.reusableElementLimit
    case .weights(let reply): reply.parameters.values.count <= WireCodec.reusableElementLimit
    default: true
    }
  }
}
