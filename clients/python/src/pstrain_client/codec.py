"""The pstrain wire protocol, version 7 (docs/protocol.md), for the messages a dense
worker and a status client send and receive: encoders and strict decoders, no
sockets. The Swift codec in Sources/WireProtocol is the reference; the golden
files in Tests/GoldenFrames hold the bytes both must agree on.

A message is one byte string, sent as one frame or as several when float64 tensor
values of `VALUES_FRAME_THRESHOLD` bytes or more travel in frames of their own
("Values frames"): `encode` returns those values as the NumPy arrays themselves
(zmq sends them with copy=False), and `decode` reads them in place.
"""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np

from .errors import ERROR_NAMES, ProtocolError

PROTOCOL_VERSION = 7
MAGIC = b"PS"
#: Float64 values of this many bytes or more are sent in a frame of their own.
VALUES_FRAME_THRESHOLD = 64 << 10
MAXIMUM_TENSORS = 256
MAXIMUM_ROWS = 1 << 20
ROW_LIMIT = 1 << 48
MAXIMUM_FRAMES = 1 + 2 * 2 * MAXIMUM_TENSORS
MAXIMUM_WORKERS = 65536
MAXIMUM_ELEMENTS = (1 << 31) - 1
FLOAT64, FLOAT32 = 1, 2
_DTYPES = {FLOAT64: np.dtype("<f8"), FLOAT32: np.dtype("<f4")}
_LITTLE_ENDIAN = sys.byteorder == "little"

# Message types (docs/protocol.md, "Messages").
JOIN, PUSH, WEIGHTS, STATUS_REQUEST, STATUS = 1, 2, 3, 4, 5
LEAVE, LEFT, ERROR, HEARTBEAT, LEASE_REQUEST, LEASE, NO_LEASE = 9, 10, 11, 12, 13, 14, 15
#: Every type of protocol 7, by number (a decoder names the ones it does not take).
MESSAGE_NAMES = {
    1: "join", 2: "push", 3: "weights", 4: "status-request", 5: "status",
    6: "audit-subscribe", 7: "subscription", 8: "audit-record", 9: "leave", 10: "left",
    11: "error", 12: "heartbeat", 13: "lease-request", 14: "lease", 15: "no-lease",
    16: "audit-result", 17: "pushes", 18: "evaluation", 19: "sparse-pull", 20: "sparse-rows",
    21: "sparse-push", 22: "sparse-ack", 23: "sparse-audit-record",
}
MODES = {1: "async", 2: "sync", 3: "ssp"}
CHECKS = {1: "finite_differences", 2: "replay"}

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_SPARSE_NAME = re.compile(r"(?:sparse-logreg|fm-([1-9][0-9]{0,2}))\.h([1-9][0-9]?)\Z")


# --- Payloads -------------------------------------------------------------------------


@dataclass
class TensorSpec:
    """A tensor's name, shape (outermost first) and element type (1 float64, 2 float32)."""

    name: str
    shape: tuple
    element_type: int = FLOAT64

    @property
    def count(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Tensor:
    """A named tensor with its values: a NumPy array of its shape, float64 or float32."""

    name: str
    values: np.ndarray
    element_type: int = FLOAT64

    @property
    def spec(self) -> TensorSpec:
        return TensorSpec(self.name, tuple(self.values.shape), self.element_type)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Tensor) and self.spec == other.spec
            and self.values.tobytes() == other.values.tobytes()
        )


@dataclass
class ModelDescriptor:
    """The model a worker computes: its name and parameter layout (as `join` carries it)."""

    name: str
    layout: list


@dataclass
class Join:
    """Worker -> server: join the run (answered with `Weights`)."""

    worker_id: int
    model: ModelDescriptor
    dataset_rows: int
    dataset_fingerprint: int
    shard: tuple = (0, 1)
    TYPE = JOIN


@dataclass
class Push:
    """Worker -> server: the mean-loss gradient of `rows` at version `computed_at`."""

    worker_id: int
    sequence: int
    computed_at: int
    rows: Sequence[int]
    gradient: list
    TYPE = PUSH

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Push)
            and (self.worker_id, self.sequence, self.computed_at)
            == (other.worker_id, other.sequence, other.computed_at)
            and list(self.rows) == list(other.rows) and self.gradient == other.gradient
        )


@dataclass
class Weights:
    """Server -> worker: the parameters at `version`, answering push `acknowledged`
    (for a join: the worker's last applied push); `applied_below` the bitmap's words."""

    version: int
    acknowledged: int
    parameters: list
    applied_below: list = field(default_factory=list)
    TYPE = WEIGHTS


@dataclass
class StatusRequest:
    """Anyone -> server: ask for `Status`."""

    TYPE = STATUS_REQUEST


@dataclass
class Status:
    """Server -> client: the server's state, as a dict of snake_case fields
    (docs/protocol.md, `status`); its `parameters` a list of `Tensor`."""

    fields: dict
    TYPE = STATUS


@dataclass
class Leave:
    """Worker -> server: leave the run (answered with `Left`)."""

    worker_id: int
    TYPE = LEAVE


@dataclass
class Left:
    """Server -> worker: the leave was accepted."""

    worker_id: int
    TYPE = LEFT


@dataclass
class Heartbeat:
    """Worker -> server: still alive (no reply)."""

    worker_id: int
    TYPE = HEARTBEAT


@dataclass
class LeaseRequest:
    """Worker -> server: ask for rows to train on (leased work)."""

    worker_id: int
    TYPE = LEASE_REQUEST


@dataclass
class Lease:
    """Server -> worker: rows first_row .. first_row + row_count - 1 of `epoch`, and the weights."""

    epoch: int
    first_row: int
    row_count: int
    weights: Weights
    TYPE = LEASE


@dataclass
class NoLease:
    """Server -> worker: no rows now (ask again after `retry_after_ms`) or ever (`finished`)."""

    finished: bool
    retry_after_ms: int
    TYPE = NO_LEASE


@dataclass
class ErrorReply:
    """Server -> client: the request was refused with `code` (see errors.py)."""

    code: int
    message: str
    TYPE = ERROR


Message = Union[
    Join, Push, Weights, StatusRequest, Status, Leave, Left, Heartbeat, LeaseRequest, Lease,
    NoLease, ErrorReply,
]


# --- Writing --------------------------------------------------------------------------


class _Writer:
    """Collects a message's frames: byte runs, and float64 values of `threshold`
    bytes or more as arrays of their own (never copied)."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.frames: list = []
        self.current = bytearray()

    def pack(self, fmt: str, *values: Any) -> None:
        self.current += struct.pack("<" + fmt, *values)

    def string(self, text: str, length_format: str, maximum: int, what: str) -> None:
        data = text.encode("utf-8")
        if len(data) > maximum:
            raise ValueError(f"{what} is {len(data)} bytes; at most {maximum}")
        self.pack(length_format, len(data))
        self.current += data

    def name(self, text: str, what: str) -> None:
        if not _NAME.match(text):
            raise ValueError(f"{what} {text!r} is not 1-64 characters of A-Z a-z 0-9 . _ -")
        self.string(text, "B", 64, what)

    def finite(self, value: float, what: str) -> None:
        if not np.isfinite(value):
            raise ValueError(f"{what} is NaN or infinite")
        self.pack("d", value)

    def values(self, array: np.ndarray, element_type: int, what: str) -> None:
        flat = np.ascontiguousarray(array, dtype=_DTYPES[element_type]).reshape(-1)
        if not np.isfinite(flat).all():
            index = int(np.flatnonzero(~np.isfinite(flat))[0])
            raise ValueError(f"{what}[{index}] is NaN or infinite")
        if element_type == FLOAT64 and _LITTLE_ENDIAN and flat.nbytes >= self.threshold:
            if self.current:
                self.frames.append(bytes(self.current))
                self.current = bytearray()
            self.frames.append(flat)
        else:
            self.current += flat.tobytes()

    def finish(self) -> list:
        if self.current or not self.frames:
            self.frames.append(bytes(self.current))
        return self.frames


def _write_shape(w: _Writer, shape: Sequence[int], what: str) -> None:
    if not 1 <= len(shape) <= 4:
        raise ValueError(f"{what} has rank {len(shape)}; 1 to 4")
    w.pack("B", len(shape))
    product = 1
    for size in shape:
        product *= int(size)
        if int(size) < 1 or product > MAXIMUM_ELEMENTS:
            raise ValueError(f"{what} shape {tuple(shape)}: dimensions >= 1, at most 2^31-1 elements")
        w.pack("Q", int(size))


def _write_tensors(w: _Writer, tensors: Sequence[Tensor], what: str) -> None:
    if not 1 <= len(tensors) <= MAXIMUM_TENSORS:
        raise ValueError(f"{what}: {len(tensors)} tensors; 1 to {MAXIMUM_TENSORS}")
    if len({t.name for t in tensors}) != len(tensors):
        raise ValueError(f"{what}: tensor names repeat")
    w.pack("H", len(tensors))
    for tensor in tensors:
        w.name(tensor.name, f"{what} tensor name")
        w.pack("B", tensor.element_type)
        _write_shape(w, np.shape(tensor.values), f"{what} {tensor.name}")
        w.values(tensor.values, tensor.element_type, f"{what} {tensor.name}")


def _write_rows(w: _Writer, rows: Sequence[int]) -> None:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if not 1 <= len(rows) <= MAXIMUM_ROWS:
        raise ValueError(f"{len(rows)} rows; 1 to {MAXIMUM_ROWS}")
    if (rows < 0).any() or (rows >= ROW_LIMIT).any():
        raise ValueError("row numbers must be 0 to 2^48-1")
    w.pack("I", len(rows))
    w.current += rows.astype("<u8").tobytes()


def _write_weights_body(w: _Writer, m: Weights) -> None:
    words = list(m.applied_below)
    if len(words) > 4 or (words and words[-1] == 0):
        raise ValueError("applied-below: at most 4 words, the last not zero")
    w.pack("QQB", m.version, m.acknowledged, len(words))
    for word in words:
        w.pack("Q", word)
    _write_tensors(w, m.parameters, "weights")


def encode(message: Message, threshold: int = VALUES_FRAME_THRESHOLD) -> list:
    """`message` as frames: `bytes`, and float64 values of `threshold` bytes or more
    as contiguous little-endian NumPy arrays, each a frame of its own (send them with
    copy=False: zmq then reads the array's buffer)."""
    w = _Writer(threshold)
    w.current += MAGIC + bytes([PROTOCOL_VERSION, message.TYPE])
    m = message
    if isinstance(m, Join):
        w.pack("I", m.worker_id)
        _write_shard(w, m.shard)
        w.name(m.model.name, "model name")
        if not 1 <= len(m.model.layout) <= MAXIMUM_TENSORS:
            raise ValueError(f"model: {len(m.model.layout)} tensors; 1 to {MAXIMUM_TENSORS}")
        w.pack("H", len(m.model.layout))
        for spec in m.model.layout:
            w.name(spec.name, "tensor name")
            _write_shape(w, spec.shape, f"tensor {spec.name}")
            w.pack("B", spec.element_type)
        if not 1 <= m.dataset_rows < ROW_LIMIT:
            raise ValueError("dataset rows must be 1 to 2^48-1")
        w.pack("QQ", m.dataset_rows, m.dataset_fingerprint)
    elif isinstance(m, Push):
        if m.sequence < 1:
            raise ValueError("sequence numbers start at 1")
        w.pack("IQQ", m.worker_id, m.sequence, m.computed_at)
        _write_rows(w, m.rows)
        _write_tensors(w, m.gradient, "gradient")
    elif isinstance(m, Weights):
        _write_weights_body(w, m)
    elif isinstance(m, StatusRequest):
        pass
    elif isinstance(m, Status):
        _write_status(w, m.fields)
    elif isinstance(m, (Leave, Left, Heartbeat, LeaseRequest)):
        w.pack("I", m.worker_id)
    elif isinstance(m, Lease):
        w.pack("QQQ", m.epoch, m.first_row, m.row_count)
        _write_weights_body(w, m.weights)
    elif isinstance(m, NoLease):
        w.pack("BI", int(m.finished), m.retry_after_ms)
    elif isinstance(m, ErrorReply):
        w.pack("H", m.code)
        w.string(m.message, "H", 1024, "error message")
    else:
        raise TypeError(f"cannot encode {type(m).__name__}")
    return w.finish()


def encode_bytes(message: Message) -> bytes:
    """`message` as one byte string (the concatenation of its frames)."""
    return b"".join(
        f if isinstance(f, bytes) else f.tobytes() for f in encode(message, threshold=1 << 62)
    )


def _write_shard(w: _Writer, shard: Sequence[int]) -> None:
    index, count = shard
    if not (1 <= count <= MAXIMUM_WORKERS and 0 <= index < count):
        raise ValueError(f"shard {index}/{count}: count 1 to 65536, index below it")
    w.pack("II", index, count)


def _write_audit(w: _Writer, a: dict) -> None:
    checks = sum(bit for bit, name in CHECKS.items() if name in a["failed_checks"])
    w.pack("IQB", a["worker"], a["sequence"], int(a["passed"]))
    w.finite(a["max_relative_error"], "audit relative error")
    w.pack("B", int(a["conclusive"]))
    w.finite(a["gradient_magnitude"], "audit gradient magnitude")
    w.pack("QBQB", a["applied_at"], checks, a["replay_mismatches"], int(a["confirmed"]))


def _write_status(w: _Writer, s: dict) -> None:
    w.pack("BQQQ", {v: k for k, v in MODES.items()}[s["mode"]], s["version"],
           s["gradients_applied"], s["rejected"])
    w.finite(s["learning_rate"], "learning rate")
    w.pack("I", s["required_workers"])
    w.name(s["model"], "model name")
    _write_tensors(w, s["parameters"], "parameters")
    w.pack("I", len(s["workers"]))
    for worker in s["workers"]:
        w.pack("I", worker["id"])
        _write_shard(w, worker["shard"])
        w.pack("QQQ", worker["pushes_applied"], worker["last_sequence"], worker["staleness"])
    w.pack("IQQQQQI", s["workers_left"], s["audit_records_sent"], s["epochs"], s["epoch"],
           s["rows_applied_in_epoch"], s["dataset_rows"], s["workers_dead"])
    w.string(s["optimizer"], "H", 1024, "optimizer")
    w.finite(s["current_learning_rate"], "current learning rate")
    w.pack("Q", s["staleness"])
    _write_shard(w, s["server_shard"])
    w.pack("QQQQ", s["parameter_offset"], s["total_parameters"], s["audits_reported"],
           s["audits_failed"])
    w.pack("B", s["last_audit"] is not None)
    if s["last_audit"] is not None:
        _write_audit(w, s["last_audit"])
    c = s["checkpoints"]
    w.pack("B", c is not None)
    if c is not None:
        w.pack("B", c["durable_version"] is not None)
        if c["durable_version"] is not None:
            w.pack("QQ", c["durable_version"], c["durable_age_ms"])
        w.pack("QQQ", c["failures"], c["consecutive_failures"], c["failing_for_ms"])
        w.string(c["last_error"], "H", 1024, "last checkpoint error")
        w.pack("Q", c["last_error_age_ms"])
    r = s["resume"]
    w.pack("B", r is not None)
    if r is not None:
        w.string(r["checkpoint_file"], "H", 1024, "resume checkpoint file")
        w.pack("QQBQI", r["version"], r["gradients_applied"], int(r["job_complete"]),
               r["rows_to_lease"], len(r["workers"]))
        for worker in r["workers"]:
            w.pack("IQ", worker["id"], worker["last_sequence"])
    e = s["last_evaluation"]
    w.pack("B", e is not None)
    if e is not None:
        w.pack("QQ", e["version"], e["rows"])
        w.finite(e["loss"], "evaluation loss")
        for key in ("accuracy", "auc"):
            w.pack("B", e[key] is not None)
            if e[key] is not None:
                w.finite(e[key], f"evaluation {key}")
    q = s["quarantine"]
    w.pack("BI", int(q["enabled"]), len(q["workers"]))
    for worker in q["workers"]:
        checks = sum(bit for bit, name in CHECKS.items() if name in worker["failed_checks"])
        w.pack("IQB", worker["id"], worker["sequence"], checks)
        w.finite(worker["max_relative_error"], "quarantined relative error")
        rolled = worker["rolled_back_to"]
        w.pack("QQBQ", worker["replay_mismatches"], worker["quarantined_at"],
               rolled is not None, rolled or 0)
    w.pack("QQ", q["rollbacks"], q["versions_rolled_back"])
    k = s["keyed_table"]
    w.pack("B", k is not None)
    if k is not None:
        w.string(k["model"], "B", 255, "keyed table model name")
        w.pack("I", k["width"])
        w.pack("12Q", *(k[name] for name in _KEYED_COUNTS))


_KEYED_COUNTS = (
    "rows_touched", "row_bytes", "bytes_allocated", "pulls", "pushes", "keys_pulled",
    "keys_pushed", "key_cache_hits", "key_cache_misses", "examples", "bytes_received",
    "bytes_sent",
)


# --- Reading --------------------------------------------------------------------------


class _Reader:
    """Reads a message front to back across its frames, refusing to read past a
    frame's end; it moves to the next frame only where tensor values begin or end."""

    def __init__(self, frames: Sequence[Any]):
        if not frames:
            raise ProtocolError("an empty message", "magic")
        if len(frames) > MAXIMUM_FRAMES:
            raise ProtocolError(f"{len(frames)} frames; at most {MAXIMUM_FRAMES}", "frames")
        self.frames = [memoryview(f).cast("B") for f in frames]
        self.frame = 0
        self.buffer = self.frames[0]
        self.offset = 0
        self.in_values = False

    @property
    def remaining(self) -> int:
        return len(self.buffer) - self.offset

    def take(self, size: int, what: str) -> memoryview:
        if size > self.remaining:
            raise ProtocolError(
                f"truncated: {what} needs {size} bytes, {self.remaining} left", what)
        start = self.offset
        self.offset += size
        return self.buffer[start:self.offset]

    def unpack(self, fmt: str, what: str) -> Any:
        values = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))
        return values[0] if len(values) == 1 else values

    def flag(self, what: str) -> bool:
        byte = self.unpack("B", what)
        if byte > 1:
            raise ProtocolError(f"{what} = {byte}; 0 or 1", what)
        return byte == 1

    def finite(self, what: str, minimum: float | None = None, maximum: float | None = None) -> float:
        value = self.unpack("d", what)
        if not np.isfinite(value):
            raise ProtocolError(f"{what} is NaN or infinite", what)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ProtocolError(f"{what} = {value} is out of range", what)
        return value

    def string(self, length_format: str, maximum: int, what: str) -> str:
        length = self.unpack(length_format, f"{what} length")
        if length > maximum:
            raise ProtocolError(f"{what} is {length} bytes; at most {maximum}", what)
        try:
            return bytes(self.take(length, what)).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"{what} is not valid UTF-8", what) from None

    def name(self, what: str) -> str:
        text = self.string("B", 64, what)
        if not _NAME.match(text):
            raise ProtocolError(f"{what} {text!r} is not 1-64 characters of A-Z a-z 0-9 . _ -", what)
        return text

    def values(self, count: int, element_type: int, what: str) -> np.ndarray:
        """`count` finite values, read in place (a read-only view of the frame)."""
        dtype = _DTYPES[element_type]
        size = count * dtype.itemsize
        own_frame = False
        if self.remaining == 0 and self.frame + 1 < len(self.frames):
            following = self.frames[self.frame + 1]
            if len(following) != size:
                raise ProtocolError(
                    f"{what}: a values frame of {len(following)} bytes for {size} bytes of values",
                    what)
            self.frame += 1
            self.buffer, self.offset, own_frame = following, 0, True
        data = np.frombuffer(self.take(size, f"{what} data"), dtype=dtype)
        finite = np.isfinite(data)
        if not finite.all():
            index = int(np.flatnonzero(~finite)[0])
            raise ProtocolError(f"{what}[{index}] is NaN or infinite", what)
        if own_frame and self.frame + 1 < len(self.frames):
            if len(self.frames[self.frame + 1]) == 0:
                raise ProtocolError("an empty frame after a values frame", "frames")
            self.frame += 1
            self.buffer, self.offset = self.frames[self.frame], 0
        return data

    def expect_end(self) -> None:
        if self.remaining:
            raise ProtocolError(f"{self.remaining} unexpected bytes after the message", "trailing")
        if self.frame + 1 < len(self.frames):
            raise ProtocolError(
                f"{len(self.frames) - self.frame - 1} more frames than the message holds", "frames")


def _read_shape(r: _Reader, what: str) -> tuple:
    rank = r.unpack("B", f"{what} rank")
    if not 1 <= rank <= 4:
        raise ProtocolError(f"{what} rank {rank}; 1 to 4", f"{what} rank")
    shape, product = [], 1
    for axis in range(rank):
        size = r.unpack("Q", f"{what} dimension {axis}")
        product *= size
        if size < 1 or product > MAXIMUM_ELEMENTS:
            raise ProtocolError(f"{what}: a dimension of 0 or more than 2^31-1 elements", what)
        shape.append(size)
    return tuple(shape)


def _read_count(r: _Reader, what: str) -> int:
    count = r.unpack("H", f"{what} tensor count")
    if not 1 <= count <= MAXIMUM_TENSORS:
        raise ProtocolError(f"{what} tensor count {count}; 1 to {MAXIMUM_TENSORS}", what)
    return count


def _check_unique(names: list) -> None:
    if len(set(names)) != len(names):
        raise ProtocolError("a tensor name appears twice", "tensor name")


def _read_element_type(r: _Reader, what: str) -> int:
    tag = r.unpack("B", f"{what} element type")
    if tag not in _DTYPES:
        raise ProtocolError(f"{what} element type {tag}; 1 (float64) or 2 (float32)", what)
    return tag


def _read_tensors(r: _Reader, what: str) -> list:
    tensors = []
    for _ in range(_read_count(r, what)):
        name = r.name(f"{what} tensor name")
        element_type = _read_element_type(r, f"{what} {name}")
        shape = _read_shape(r, f"{what} {name}")
        count = int(np.prod(shape, dtype=np.int64))
        values = r.values(count, element_type, f"{what} {name}").reshape(shape)
        tensors.append(Tensor(name, values, element_type))
    _check_unique([t.name for t in tensors])
    return tensors


def _read_rows(r: _Reader) -> np.ndarray:
    count = r.unpack("I", "row count")
    if not 1 <= count <= MAXIMUM_ROWS:
        raise ProtocolError(f"row count {count}; 1 to {MAXIMUM_ROWS}", "row count")
    rows = np.frombuffer(r.take(8 * count, "rows"), dtype="<u8")
    if (rows >= ROW_LIMIT).any():
        raise ProtocolError("a row number is not below 2^48", "rows")
    return rows.astype(np.int64)


def _read_shard(r: _Reader, what: str = "shard") -> tuple:
    index, count = r.unpack("II", what)
    if not (1 <= count <= MAXIMUM_WORKERS and index < count):
        raise ProtocolError(f"{what} {index}/{count}: count 1 to 65536, index below it", what)
    return (index, count)


def _read_weights_body(r: _Reader) -> Weights:
    version, acknowledged = r.unpack("QQ", "version")
    count = r.unpack("B", "applied-below words")
    if count > 4:
        raise ProtocolError(f"applied-below words {count}; 0 to 4", "applied-below words")
    words = [r.unpack("Q", "applied-below word") for _ in range(count)]
    if words and words[-1] == 0:
        raise ProtocolError("applied-below: the last word is zero", "applied-below words")
    return Weights(version, acknowledged, _read_tensors(r, "weights"), words)


def _read_checks(r: _Reader, what: str, at_least_one: bool) -> list:
    bits = r.unpack("B", what)
    if bits & ~3 or (at_least_one and bits == 0):
        raise ProtocolError(f"{what} = {bits}: bits 1 (finite differences) and 2 (replay)", what)
    return [name for bit, name in CHECKS.items() if bits & bit]


def _read_audit(r: _Reader) -> dict:
    worker, sequence = r.unpack("IQ", "audit worker id")
    passed = r.flag("audit passed")
    error = r.finite("audit relative error", minimum=0)
    conclusive = r.flag("audit conclusive")
    magnitude = r.finite("audit gradient magnitude", minimum=0)
    applied_at = r.unpack("Q", "audit applied-at version")
    checks = _read_checks(r, "audit failed checks", at_least_one=False)
    mismatches = r.unpack("Q", "audit replay mismatches")
    confirmed = r.flag("audit confirmed")
    if passed != (not checks) or (confirmed and passed):
        raise ProtocolError(
            "a passed audit names no failed check and is not confirmed; a failed one names one",
            "audit failed checks")
    return dict(worker=worker, sequence=sequence, passed=passed, max_relative_error=error,
                conclusive=conclusive, gradient_magnitude=magnitude, applied_at=applied_at,
                failed_checks=checks, replay_mismatches=mismatches, confirmed=confirmed)


def _read_status(r: _Reader) -> dict:
    mode = r.unpack("B", "mode")
    if mode not in MODES:
        raise ProtocolError(f"mode {mode}; 1 (async), 2 (sync) or 3 (ssp)", "mode")
    s: dict = {"mode": MODES[mode]}
    s["version"], s["gradients_applied"], s["rejected"] = r.unpack("QQQ", "version")
    s["learning_rate"] = r.finite("learning rate")
    s["required_workers"] = r.unpack("I", "required workers")
    s["model"] = r.name("model name")
    s["parameters"] = _read_tensors(r, "parameters")
    count = r.unpack("I", "worker count")
    if count > MAXIMUM_WORKERS or count > r.remaining // 36:
        raise ProtocolError(f"worker count {count}: more than fits", "worker count")
    workers = []
    for _ in range(count):
        worker_id = r.unpack("I", "worker id")
        shard = _read_shard(r)
        pushes, last, staleness = r.unpack("QQQ", "worker pushes")
        workers.append(dict(id=worker_id, shard=shard, pushes_applied=pushes,
                            last_sequence=last, staleness=staleness))
    s["workers"] = workers
    (s["workers_left"], s["audit_records_sent"], s["epochs"], s["epoch"],
     s["rows_applied_in_epoch"], s["dataset_rows"], s["workers_dead"]) = r.unpack(
        "IQQQQQI", "workers left")
    s["optimizer"] = r.string("H", 1024, "optimizer")
    s["current_learning_rate"] = r.finite("current learning rate")
    s["staleness"] = r.unpack("Q", "staleness")
    s["server_shard"] = _read_shard(r, "server shard")
    (s["parameter_offset"], s["total_parameters"], s["audits_reported"],
     s["audits_failed"]) = r.unpack("QQQQ", "parameter offset")
    s["last_audit"] = _read_audit(r) if r.flag("last audit present") else None
    checkpoints = None
    if r.flag("checkpoint report present"):
        durable = r.unpack("QQ", "durable checkpoint") if r.flag("durable checkpoint present") else None
        failures, consecutive, failing_for = r.unpack("QQQ", "checkpoint failures")
        if consecutive > failures:
            raise ProtocolError("more consecutive checkpoint failures than failures",
                                "consecutive checkpoint failures")
        checkpoints = dict(
            durable_version=durable[0] if durable else None,
            durable_age_ms=durable[1] if durable else 0, failures=failures,
            consecutive_failures=consecutive, failing_for_ms=failing_for,
            last_error=r.string("H", 1024, "last checkpoint error"),
            last_error_age_ms=r.unpack("Q", "last checkpoint error age"))
    s["checkpoints"] = checkpoints
    total_values = sum(t.values.size for t in s["parameters"])
    if s["parameter_offset"] > s["total_parameters"] or \
            total_values > s["total_parameters"] - s["parameter_offset"]:
        raise ProtocolError("the parameters lie beyond the total parameters", "parameter offset")
    resume = None
    if r.flag("resume present"):
        resume = dict(checkpoint_file=r.string("H", 1024, "resume checkpoint file"))
        resume["version"], resume["gradients_applied"] = r.unpack("QQ", "resume version")
        resume["job_complete"] = r.flag("resume job complete")
        resume["rows_to_lease"], count = r.unpack("QI", "resume rows to lease")
        if count > MAXIMUM_WORKERS or count > r.remaining // 12:
            raise ProtocolError(f"resume worker count {count}: more than fits", "resume worker count")
        resume["workers"] = [
            dict(zip(("id", "last_sequence"), r.unpack("IQ", "resume worker"))) for _ in range(count)
        ]
    s["resume"] = resume
    evaluation = None
    if r.flag("evaluation present"):
        version, rows = r.unpack("QQ", "evaluation version")
        if rows < 1:
            raise ProtocolError("evaluation rows = 0; >= 1", "evaluation rows")
        evaluation = dict(version=version, rows=rows, loss=r.finite("evaluation loss", minimum=0))
        for key in ("accuracy", "auc"):
            present = r.flag(f"evaluation {key} present")
            evaluation[key] = r.finite(f"evaluation {key}", 0, 1) if present else None
    s["last_evaluation"] = evaluation
    enabled = r.flag("quarantine enabled")
    count = r.unpack("I", "quarantined count")
    if count > 256 or count > r.remaining // 46:
        raise ProtocolError(f"quarantined count {count}: more than fits", "quarantined count")
    quarantined = []
    for _ in range(count):
        worker_id, sequence = r.unpack("IQ", "quarantined worker id")
        checks = _read_checks(r, "quarantined failed checks", at_least_one=True)
        error = r.finite("quarantined relative error", minimum=0)
        mismatches, at = r.unpack("QQ", "quarantined replay mismatches")
        rolled_back = r.flag("rolled back")
        to = r.unpack("Q", "rolled back to")
        if to > at:
            raise ProtocolError(f"rolled back to {to}, after the quarantine at {at}", "rolled back to")
        quarantined.append(dict(id=worker_id, sequence=sequence, failed_checks=checks,
                                max_relative_error=error, replay_mismatches=mismatches,
                                quarantined_at=at, rolled_back_to=to if rolled_back else None))
    rollbacks, versions = r.unpack("QQ", "rollbacks")
    s["quarantine"] = dict(enabled=enabled, workers=quarantined, rollbacks=rollbacks,
                           versions_rolled_back=versions)
    keyed = None
    if r.flag("keyed table present"):
        name = r.string("B", 255, "keyed table model name")
        match = _SPARSE_NAME.match(name)
        if not match or (match.group(1) and int(match.group(1)) > 256) or int(match.group(2)) > 40:
            raise ProtocolError(f"{name!r} is not a sparse model (sparse-logreg.hB or fm-K.hB)",
                                "keyed table model name")
        width = r.unpack("I", "keyed table width")
        if not 1 <= width <= 257:
            raise ProtocolError(f"keyed table width {width}; 1 to 257", "keyed table width")
        keyed = dict(model=name, width=width)
        keyed.update(zip(_KEYED_COUNTS, r.unpack("12Q", "keyed table counts")))
    s["keyed_table"] = keyed
    return s


def decode(frames: Union[bytes, Sequence[Any]]) -> Message:
    """Decodes one message (a byte string, or its frames: bytes, memoryviews or zmq
    frames), validating every field as docs/protocol.md says. Raises `ProtocolError`
    naming the field at fault. Tensor values are read-only views of the frames."""
    r = _Reader([frames] if isinstance(frames, (bytes, bytearray, memoryview)) else frames)
    if bytes(r.take(2, "magic")) != MAGIC:
        raise ProtocolError("not a pstrain frame (bad magic bytes)", "magic")
    version = r.unpack("B", "protocol version")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"unsupported protocol version {version} (this client speaks {PROTOCOL_VERSION})",
            "protocol version")
    kind = r.unpack("B", "message type")
    if kind not in MESSAGE_NAMES:
        raise ProtocolError(f"unknown message type {kind}", "message type")
    message: Message
    if kind == JOIN:
        worker_id = r.unpack("I", "worker id")
        shard = _read_shard(r)
        name = r.name("model name")
        layout = []
        for _ in range(_read_count(r, "model")):
            tensor = r.name("tensor name")
            shape = _read_shape(r, f"tensor {tensor}")
            layout.append(TensorSpec(tensor, shape, _read_element_type(r, f"tensor {tensor}")))
        _check_unique([s.name for s in layout])
        rows, fingerprint = r.unpack("QQ", "dataset rows")
        if not 1 <= rows < ROW_LIMIT:
            raise ProtocolError(f"dataset rows {rows}; 1 to 2^48-1", "dataset rows")
        message = Join(worker_id, ModelDescriptor(name, layout), rows, fingerprint, shard)
    elif kind == PUSH:
        worker_id, sequence, computed_at = r.unpack("IQQ", "worker id")
        if sequence < 1:
            raise ProtocolError("sequence 0: sequence numbers start at 1", "sequence")
        rows = _read_rows(r)
        message = Push(worker_id, sequence, computed_at, rows, _read_tensors(r, "gradient"))
    elif kind == WEIGHTS:
        message = _read_weights_body(r)
    elif kind == STATUS_REQUEST:
        message = StatusRequest()
    elif kind == STATUS:
        message = Status(_read_status(r))
    elif kind in (LEAVE, LEFT, HEARTBEAT, LEASE_REQUEST):
        cls = {LEAVE: Leave, LEFT: Left, HEARTBEAT: Heartbeat, LEASE_REQUEST: LeaseRequest}[kind]
        message = cls(r.unpack("I", "worker id"))
    elif kind == LEASE:
        epoch, first, count = r.unpack("QQQ", "lease epoch")
        if count < 1 or first >= ROW_LIMIT or count >= ROW_LIMIT - first:
            raise ProtocolError(f"lease rows {first}+{count}: 1 or more rows below 2^48", "lease rows")
        message = Lease(epoch, first, count, _read_weights_body(r))
    elif kind == NO_LEASE:
        message = NoLease(r.flag("finished"), r.unpack("I", "retry after"))
    elif kind == ERROR:
        code = r.unpack("H", "error code")
        if code not in ERROR_NAMES:
            raise ProtocolError(f"error code {code} is not a known code", "error code")
        message = ErrorReply(code, r.string("H", 1024, "error message"))
    else:
        raise ProtocolError(
            f"a {MESSAGE_NAMES[kind]} message, which a client is never sent", "message type")
    r.expect_end()
    return message
