"""`Client`: one DEALER connection to a pstrain server, speaking the worker's and the
status client's conversations (docs/protocol.md, "Conversations", "Sockets")."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import zmq

from . import codec
from .codec import (
    ErrorReply, Join, Lease, LeaseRequest, Leave, Left, ModelDescriptor, NoLease, Push, Status,
    StatusRequest, Tensor, Weights,
)
from .errors import EndpointError, ProtocolError, PstrainError, PstrainTimeoutError, server_error
from .keys import key_pair, public_key as read_public_key


@dataclass
class Snapshot:
    """The server's parameters at `version`: NumPy arrays by tensor name, in the
    layout's order (read-only views of the received frames: `.copy()` to change one).
    `acknowledged` is the push sequence the reply answered (0 for a pull)."""

    version: int
    weights: dict
    acknowledged: int = 0


@dataclass
class LeaseGrant:
    """Rows leased to the worker (a server started with `--epochs`): push them in
    order, in batches of consecutive rows, starting from `snapshot`'s weights."""

    epoch: int
    rows: range
    snapshot: Snapshot


def _snapshot(reply: Weights) -> Snapshot:
    return Snapshot(reply.version, {t.name: t.values for t in reply.parameters}, reply.acknowledged)


class Client:
    """A connection to the pstrain server at `endpoint` (`tcp://host:port`).

    CURVE is optional: give `server_public_key` (Z85 text or a `.pub` file from
    `pstrain keygen`) and `secret_key` (a `.key` file, mode 0600, or Z85 text; the
    public key is derived from it unless `public_key` is given). Every request waits
    at most `timeout` seconds for its answer, then raises `PstrainTimeoutError`.

    A worker's conversation: `join` (the model and dataset identity), then `push`
    (gradient and rows, computed at the last weights received), each answered with
    fresh weights; `pull` reads the current weights; `leave` at the end (a `with`
    block leaves and closes on exit). `status` works without joining.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        server_public_key: Optional[str] = None,
        public_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        timeout: float = 10.0,
        context: Optional[zmq.Context] = None,
    ):
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        if (server_public_key is None) != (secret_key is None):
            raise ValueError("CURVE needs both server_public_key and secret_key")
        self.endpoint = endpoint
        self.timeout = timeout
        self.worker_id: Optional[int] = None
        #: The last push sequence number acknowledged (pushes go on from it).
        self.sequence = 0
        #: The version of the last weights received (pushes say they were computed at it).
        self.version: Optional[int] = None
        #: The joined model's layout: the order and shapes pushes are sent in.
        self.layout: Optional[list] = None
        self._context = context or zmq.Context.instance()
        socket = self._context.socket(zmq.DEALER)
        try:
            # As every pstrain client sets them (docs/protocol.md, "Sockets").
            socket.setsockopt(zmq.LINGER, 2000)
            socket.setsockopt(zmq.HEARTBEAT_IVL, 1000)
            socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
            socket.setsockopt(zmq.SNDHWM, 10_000)
            socket.setsockopt(zmq.RCVHWM, 10_000)
            socket.setsockopt(zmq.RECONNECT_IVL, 100)
            socket.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
            # A random 16-byte routing id (a leading zero byte is reserved by libzmq).
            socket.setsockopt(zmq.ROUTING_ID, bytes([1 + os.urandom(1)[0] % 255]) + os.urandom(15))
            if server_public_key is not None:
                public, secret = key_pair(secret_key, public_key)
                socket.setsockopt(zmq.CURVE_SERVERKEY, read_public_key(server_public_key))
                socket.setsockopt(zmq.CURVE_PUBLICKEY, public)
                socket.setsockopt(zmq.CURVE_SECRETKEY, secret)
            try:
                socket.connect(endpoint)
            except zmq.ZMQError as error:
                raise EndpointError(
                    f"cannot connect to {endpoint!r}: {error} (an endpoint is tcp://HOST:PORT)"
                ) from error
        except BaseException:
            socket.close(linger=0)
            raise
        self._socket = socket

    # --- Requests -----------------------------------------------------------------

    def status(self) -> dict:
        """The server's state: the `status` fields (docs/protocol.md) with snake_case
        names; `version`, `model`, `weights` (arrays by tensor name, as the server
        holds them: a server shard reports its slice) and `layout` among them."""
        reply = self._request(StatusRequest(), "a status", lambda m: isinstance(m, Status))
        fields = dict(reply.fields)
        parameters = fields.pop("parameters")
        fields["weights"] = {t.name: t.values for t in parameters}
        fields["layout"] = [t.spec for t in parameters]
        return fields

    def pull(self) -> Snapshot:
        """The current weights and their version (from a status request). Later pushes
        default to having been computed at this version."""
        reply = self._request(StatusRequest(), "a status", lambda m: isinstance(m, Status))
        self.version = reply.fields["version"]
        return Snapshot(reply.fields["version"], {t.name: t.values for t in reply.fields["parameters"]})

    def join(
        self,
        worker_id: int,
        *,
        dataset_rows: int,
        dataset_fingerprint: int,
        model: Union[ModelDescriptor, None] = None,
        shard: tuple = (0, 1),
    ) -> Snapshot:
        """Joins the run as `worker_id` (unique in the run), as `pstrain worker` does:
        with the model it computes (`model`; by default the server's own, learnt from a
        status, as a worker learns it) and the identity of the data it reads (row count
        and `datasets.fingerprint`; the server refuses other data). Returns the weights;
        pushes then go on from the last push the server applied of this worker id."""
        if model is None:
            fields = self._request(StatusRequest(), "a status", lambda m: isinstance(m, Status)).fields
            model = ModelDescriptor(fields["model"], [t.spec for t in fields["parameters"]])
        message = Join(worker_id, model, dataset_rows, dataset_fingerprint, tuple(shard))
        reply = self._request(message, f"the weights answering worker {worker_id}'s join",
                              lambda m: isinstance(m, Weights))
        self.worker_id = worker_id
        self.layout = list(model.layout)
        self.sequence = reply.acknowledged
        self.version = reply.version
        return _snapshot(reply)

    def push(
        self,
        gradients: Union[Mapping[str, np.ndarray], Sequence[np.ndarray]],
        rows: Sequence[int],
        *,
        computed_at: Optional[int] = None,
    ) -> Snapshot:
        """Pushes the gradient of the mean loss over dataset `rows` (their row numbers),
        computed at version `computed_at` (default: the last weights received), and
        returns the weights after it was applied. `gradients` maps tensor names to arrays
        (or lists them in the layout's order) of the layout's shapes; float64 values of
        64 KiB or more are sent from the arrays' own memory, not copied."""
        if self.worker_id is None or self.layout is None:
            raise PstrainError("push before join: join the run first")
        if isinstance(gradients, Mapping):
            missing = [s.name for s in self.layout if s.name not in gradients]
            extra = sorted(set(gradients) - {s.name for s in self.layout})
            if missing or extra:
                raise ValueError(f"gradient tensors differ from the layout: missing {missing}, extra {extra}")
            arrays = [gradients[s.name] for s in self.layout]
        else:
            arrays = list(gradients)
            if len(arrays) != len(self.layout):
                raise ValueError(f"{len(arrays)} gradient tensors for a layout of {len(self.layout)}")
        tensors = []
        for spec, array in zip(self.layout, arrays):
            array = np.asarray(array)
            if array.size != spec.count:
                raise ValueError(f"gradient {spec.name} has {array.size} values; the layout {spec.count}")
            dtype = "<f8" if spec.element_type == codec.FLOAT64 else "<f4"
            tensors.append(Tensor(spec.name, np.ascontiguousarray(array, dtype=dtype).reshape(spec.shape),
                                  spec.element_type))
        at = self.version if computed_at is None else computed_at
        if at is None:
            raise PstrainError("no weights received yet: pass computed_at")
        sequence = self.sequence + 1
        message = Push(self.worker_id, sequence, at, list(rows), tensors)

        def answers(reply: Any) -> bool:
            return isinstance(reply, Weights) and reply.acknowledged == sequence

        reply = self._request(message, f"the weights acknowledging push {sequence} of worker {self.worker_id}",
                              answers, ignore=lambda m: isinstance(m, Weights))
        self.sequence = sequence
        self.version = reply.version
        return _snapshot(reply)

    def lease(self) -> Union[LeaseGrant, NoLease]:
        """Asks for rows to train on (leased work): a `LeaseGrant`, or a `NoLease` whose
        `finished` says every epoch is done (leave) or else to ask again after
        `retry_after_ms`."""
        if self.worker_id is None:
            raise PstrainError("lease before join: join the run first")
        reply = self._request(LeaseRequest(self.worker_id), f"a lease for worker {self.worker_id}",
                              lambda m: isinstance(m, (Lease, NoLease)),
                              ignore=lambda m: isinstance(m, Weights))
        if isinstance(reply, NoLease):
            return reply
        self.version = reply.weights.version
        return LeaseGrant(reply.epoch, range(reply.first_row, reply.first_row + reply.row_count),
                          _snapshot(reply.weights))

    def heartbeat(self) -> None:
        """Tells the server the worker is alive (no reply)."""
        if self.worker_id is None:
            raise PstrainError("heartbeat before join")
        self._send(codec.Heartbeat(self.worker_id))

    def leave(self) -> None:
        """Leaves the run (waits for the server's `left`)."""
        if self.worker_id is None:
            return
        worker_id = self.worker_id
        self._request(Leave(worker_id), f"the left answering worker {worker_id}'s leave",
                      lambda m: isinstance(m, Left) and m.worker_id == worker_id,
                      ignore=lambda m: isinstance(m, Weights))
        self.worker_id = None

    def close(self) -> None:
        """Closes the connection (unsent messages get the 2 s linger)."""
        self._socket.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            if self.worker_id is not None:
                try:
                    self.leave()
                except PstrainError:
                    if kind is None:
                        raise
        finally:
            self.close()

    # --- Wire ---------------------------------------------------------------------

    def _send(self, message: Any) -> None:
        frames = codec.encode(message)
        for index, frame in enumerate(frames):
            more = zmq.SNDMORE if index + 1 < len(frames) else 0
            # Arrays go as they are: zmq keeps a reference until libzmq has sent them.
            self._socket.send(frame, more, copy=not isinstance(frame, np.ndarray))

    def _request(self, message: Any, awaiting: str, accept: Callable[[Any], bool],
                 ignore: Callable[[Any], bool] = lambda m: False) -> Any:
        """Sends `message` and returns the first reply `accept` takes, skipping late
        answers `ignore` recognizes; raises the server's error, a `ProtocolError` for any
        other reply, and a `PstrainTimeoutError` naming `awaiting` after the timeout."""
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._socket.poll(max(1, int(left * 1000)), zmq.POLLIN):
                raise PstrainTimeoutError(
                    f"no answer from {self.endpoint} within {self.timeout:g} s: waited for {awaiting}")
            frames = self._socket.recv_multipart(copy=False)
            reply = codec.decode([frame.buffer for frame in frames])
            if isinstance(reply, ErrorReply):
                raise server_error(reply.code, reply.message)
            if accept(reply):
                return reply
            if not ignore(reply):
                raise ProtocolError(
                    f"{self.endpoint} answered with a {codec.MESSAGE_NAMES[reply.TYPE]} message "
                    f"while the client waited for {awaiting}", "message type")

