"""The client's errors: a server's refusal by its protocol error code, a reply that
does not decode, and a reply that did not come in time (docs/protocol.md, "Error codes")."""

from __future__ import annotations


class PstrainError(Exception):
    """Every error this package raises."""


class ProtocolError(PstrainError):
    """A reply that breaks the protocol: it does not decode (truncated, bad magic,
    another version, a NaN, trailing bytes, frames cut elsewhere than around values)
    or it is not an answer to what was asked. `field` names the part at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class EndpointError(PstrainError, ValueError):
    """An endpoint ZeroMQ cannot connect to (not `tcp://HOST:PORT`, an unknown transport)."""


class PstrainTimeoutError(PstrainError, TimeoutError):
    """No answer came within the client's timeout; the message says what was awaited."""


class ServerError(PstrainError):
    """The server refused a request (an `error` reply); nothing changed on the server.
    `code` is the protocol's error code, `name` its name (`layout-mismatch`), `message`
    the server's explanation."""

    code = 0
    name = "unknown"

    def __init__(self, message: str, code: int | None = None):
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(f"{self.name} ({self.code}): {message}")


class MalformedError(ServerError):
    """The server could not decode what the client sent."""
    code, name = 1, "malformed"


class UnsupportedVersionError(ServerError):
    """The server speaks another protocol version."""
    code, name = 2, "unsupported-version"


class UnknownTypeError(ServerError):
    """The server does not know the message type."""
    code, name = 3, "unknown-type"


class NotJoinedError(ServerError):
    """The worker id has not joined from this connection (or the server forgot it)."""
    code, name = 4, "not-joined"


class DuplicateWorkerError(ServerError):
    """Another connection has joined with this worker id."""
    code, name = 5, "duplicate-worker"


class LayoutMismatchError(ServerError):
    """The model or gradient layout differs from the server's."""
    code, name = 6, "layout-mismatch"


class ShardMismatchError(ServerError):
    """The worker's shard count differs from the joined workers'."""
    code, name = 7, "shard-mismatch"


class VersionMismatchError(ServerError):
    """The push was computed at a version the server refuses (not reached; sync: not the step's)."""
    code, name = 8, "version-mismatch"


class ReplayedError(ServerError):
    """The push's sequence number is too far below the worker's highest applied one."""
    code, name = 9, "replayed"


class UnexpectedMessageError(ServerError):
    """The server does not take this message now."""
    code, name = 10, "unexpected-message"


class NonFiniteError(ServerError):
    """A NaN or an infinity was in the message."""
    code, name = 11, "non-finite"


class LeaseLostError(ServerError):
    """Leased work: the push's rows are not the next of the worker's chunk."""
    code, name = 12, "lease-lost"


class DatasetMismatchError(ServerError):
    """The worker's dataset rows or fingerprint differ from the run's (or a row is beyond them)."""
    code, name = 13, "dataset-mismatch"


class QuarantinedError(ServerError):
    """The worker failed a confirmed audit; the server takes nothing more from it."""
    code, name = 14, "quarantined"


class UnknownKeyListError(ServerError):
    """A sparse message named a cached key list the server does not hold."""
    code, name = 15, "unknown-key-list"


class KeyOutOfRangeError(ServerError):
    """A sparse message named a key outside the model's key space."""
    code, name = 16, "key-out-of-range"


#: The error class of each protocol error code.
ERROR_CLASSES: dict[int, type[ServerError]] = {
    cls.code: cls
    for cls in (
        MalformedError, UnsupportedVersionError, UnknownTypeError, NotJoinedError,
        DuplicateWorkerError, LayoutMismatchError, ShardMismatchError, VersionMismatchError,
        ReplayedError, UnexpectedMessageError, NonFiniteError, LeaseLostError,
        DatasetMismatchError, QuarantinedError, UnknownKeyListError, KeyOutOfRangeError,
    )
}

#: Each error code's protocol name.
ERROR_NAMES: dict[int, str] = {code: cls.name for code, cls in ERROR_CLASSES.items()}


def server_error(code: int, message: str) -> ServerError:
    """The typed error for a server's `error` reply of `code`."""
    return ERROR_CLASSES[code](message)
