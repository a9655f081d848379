"""Strict decoding and the typed errors: the decoder refuses what docs/protocol.md
refuses, and a client facing a fake server (a zmq ROUTER in a thread) raises the
server's error by its code, a ProtocolError for a reply that breaks the protocol, and
a timeout naming what it waited for."""

import struct
import threading

import numpy as np
import pytest
import zmq

from golden import MESSAGES, frames_of
from pstrain_client import (
    Client, LayoutMismatchError, ProtocolError, PstrainError, PstrainTimeoutError,
    QuarantinedError, ServerError, codec,
)
from pstrain_client.codec import ErrorReply, Left, Tensor, Weights
from pstrain_client.errors import ERROR_CLASSES, ERROR_NAMES, server_error


def test_every_error_code_has_its_class():
    assert sorted(ERROR_CLASSES) == list(range(1, 17))
    assert ERROR_NAMES[6] == "layout-mismatch" and ERROR_NAMES[14] == "quarantined"
    for code, cls in ERROR_CLASSES.items():
        error = server_error(code, "why")
        assert isinstance(error, ServerError) and isinstance(error, PstrainError)
        assert type(error) is cls and error.code == code and error.message == "why"
        assert str(error).startswith(f"{cls.name} ({code}): why")


def one_frame(name):
    return b"".join(frames_of(name))


@pytest.mark.parametrize("mangle, field", [
    (lambda b: b"PX" + b[2:], "magic"),
    (lambda b: b[:2] + bytes([6]) + b[3:], "protocol version"),
    (lambda b: b[:3] + bytes([99]) + b[4:], "message type"),
    (lambda b: b + b"\0", "trailing"),
    (lambda b: b[:-1], None),
    (lambda b: b[:3] + bytes([8]) + b[4:], "message type"),  # an audit-record
])
def test_malformed_weights_are_refused(mangle, field):
    with pytest.raises(ProtocolError) as caught:
        codec.decode(mangle(one_frame("weights")))
    if field:
        assert caught.value.field == field


def test_the_version_error_names_both_versions():
    with pytest.raises(ProtocolError, match="version 6 .*speaks 7"):
        codec.decode(b"PS\x06\x03")


def weights_with(value):
    return codec.encode_bytes(Weights(1, 0, [Tensor("w", np.array([1.0, 2.0]))])).replace(
        struct.pack("<d", 2.0), struct.pack("<d", value))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_refused(value):
    with pytest.raises(ProtocolError, match=r"weights w\[1\] is NaN or infinite"):
        codec.decode(weights_with(value))


def test_values_frames_must_be_cut_exactly():
    frames = frames_of("weights-values-frames")
    assert len(codec.decode(frames).parameters) == 2
    with pytest.raises(ProtocolError, match="values frame of 40 bytes"):
        codec.decode([frames[0], frames[1][:40]] + frames[2:])
    with pytest.raises(ProtocolError, match="empty frame after a values frame"):
        codec.decode(frames[:2] + [b""] + frames[2:])
    with pytest.raises(ProtocolError, match="unexpected bytes"):
        codec.decode(frames + [b"x"])
    with pytest.raises(ProtocolError, match="1 more frames than the message holds"):
        codec.decode(frames_of("push-values-frames") + [b"x"])
    # Cut inside a field (the first frame split in two) is refused.
    with pytest.raises(ProtocolError):
        codec.decode([frames[0][:10], frames[0][10:]] + frames[1:])


def test_counts_beyond_the_frame_are_refused_before_allocating():
    # A status-request header, then a weights body claiming 2^31 elements.
    body = b"PS\x07\x03" + struct.pack("<QQB", 1, 0, 0) + struct.pack("<H", 1) + b"\x01w\x01" \
        + struct.pack("<BQ", 1, (1 << 31) - 1)
    with pytest.raises(ProtocolError, match="truncated"):
        codec.decode(body)


def test_bad_names_and_flags_are_refused():
    good = one_frame("error")
    with pytest.raises(ProtocolError, match="error code 99"):
        codec.decode(good[:4] + struct.pack("<H", 99) + good[6:])
    no_lease = one_frame("no-lease")
    with pytest.raises(ProtocolError, match="finished = 2"):
        codec.decode(no_lease[:4] + b"\x02" + no_lease[5:])
    join = one_frame("join")
    with pytest.raises(ProtocolError, match="not 1-64 characters"):
        codec.decode(join.replace(b"softmax", b"soft x!"))


class FakeServer:
    """A ROUTER on a free loopback port answering each request with `answer(request)`:
    a list of replies, each a list of frames (or nothing, to stay silent)."""

    def __init__(self, answer):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.answer = answer
        self.requests = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            if not self.socket.poll(50):
                continue
            peer, *frames = self.socket.recv_multipart()
            request = codec.decode(frames)
            self.requests.append(request)
            for reply in self.answer(request) or []:
                self.socket.send_multipart([peer] + reply)

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.socket.close()
        self.context.term()


@pytest.fixture
def serve():
    servers = []

    def start(answer):
        server = FakeServer(answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def error_frames(code, text):
    return [codec.encode_bytes(ErrorReply(code, text))]


def test_a_refused_join_raises_the_typed_error(serve):
    server = serve(lambda request: [error_frames(6, "the server's model is mlp.relu")])
    with Client(server.endpoint, timeout=5) as client:
        model = codec.ModelDescriptor("softmax", [codec.TensorSpec("w", (2,))])
        with pytest.raises(LayoutMismatchError) as caught:
            client.join(1, model=model, dataset_rows=10, dataset_fingerprint=1)
        assert caught.value.code == 6 and "mlp.relu" in caught.value.message


def test_a_quarantined_worker_gets_its_error(serve):
    server = serve(lambda request: [error_frames(14, "worker 1 is quarantined")])
    with Client(server.endpoint, timeout=5) as client:
        with pytest.raises(QuarantinedError, match="worker 1 is quarantined"):
            client.status()


@pytest.mark.parametrize("reply, match", [
    ([b"PS\x07\x03\x00"], "truncated"),
    ([one_frame("weights") + b"\x00"], "unexpected bytes"),
    ([weights_with(float("nan"))], "NaN or infinite"),
    ([b"PS\x06\x05"], "version 6"),
    ([b"GET / HTTP/1.1"], "bad magic"),
    ([one_frame("left")], "answered with a left message while the client waited for a status"),
])
def test_a_hostile_reply_raises_a_protocol_error(serve, reply, match):
    server = serve(lambda request: [reply])
    with Client(server.endpoint, timeout=5) as client:
        with pytest.raises(ProtocolError, match=match):
            client.status()


def test_a_silent_server_times_out_saying_what_was_awaited(serve):
    server = serve(lambda request: None)
    with Client(server.endpoint, timeout=0.3) as client:
        with pytest.raises(PstrainTimeoutError, match="within 0.3 s: waited for a status") as caught:
            client.status()
        assert isinstance(caught.value, TimeoutError)


def test_a_push_skips_late_answers_and_takes_its_own(serve):
    layout = [codec.TensorSpec("w", (2,))]

    def answer(request):
        weights = lambda version, ack: [codec.encode_bytes(  # noqa: E731
            Weights(version, ack, [Tensor("w", np.array([float(version), 0.0]))]))]
        if isinstance(request, codec.Join):
            return [weights(3, 0)]
        if isinstance(request, codec.Push):
            # A late duplicate of an earlier answer first, then the answer.
            return [weights(2, request.sequence - 1), weights(4, request.sequence)]
        if isinstance(request, codec.Leave):
            return [[codec.encode_bytes(Left(request.worker_id))]]
        return None

    server = serve(answer)
    with Client(server.endpoint, timeout=5) as client:
        joined = client.join(7, model=codec.ModelDescriptor("linear", layout), dataset_rows=4,
                             dataset_fingerprint=9)
        assert joined.version == 3 and client.sequence == 0
        pushed = client.push({"w": np.array([0.5, -0.5])}, rows=[0, 1])
        assert (pushed.version, pushed.acknowledged) == (4, 1)
        assert list(pushed.weights["w"]) == [4.0, 0.0]
        with pytest.raises(ValueError, match="missing"):
            client.push({"v": np.zeros(2)}, rows=[0])
    push = next(r for r in server.requests if isinstance(r, codec.Push))
    assert (push.worker_id, push.sequence, push.computed_at, list(push.rows)) == (7, 1, 3, [0, 1])
    assert isinstance(server.requests[-1], codec.Leave)


def test_a_push_of_a_non_finite_gradient_is_refused_before_sending(serve):
    server = serve(lambda request: [[codec.encode_bytes(Weights(0, 0, [Tensor("w", np.zeros(2))]))]])
    with Client(server.endpoint, timeout=5) as client:
        client.join(1, model=codec.ModelDescriptor("linear", [codec.TensorSpec("w", (2,))]),
                    dataset_rows=4, dataset_fingerprint=9)
        with pytest.raises(ValueError, match=r"gradient w\[1\] is NaN"):
            client.push([np.array([0.0, np.nan])], rows=[0])
        client.worker_id = None  # the fake server does not answer a leave


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_any_damage_is_a_protocol_error_and_nothing_else(name):
    """Every truncation and a few thousand random byte changes of each golden frame
    either decode or raise ProtocolError (never IndexError, struct.error, ...)."""
    data = one_frame(name)
    for length in range(len(data)):
        with pytest.raises(ProtocolError):
            codec.decode(data[:length])
    random = np.random.default_rng(len(data))
    for _ in range(300):
        damaged = bytearray(data)
        for position in random.integers(0, len(data), random.integers(1, 4)):
            damaged[position] = random.integers(0, 256)
        try:
            codec.decode(bytes(damaged))
        except ProtocolError:
            pass


def test_an_endpoint_zeromq_cannot_use_is_an_endpoint_error():
    from pstrain_client import Client, EndpointError, PstrainError

    for endpoint in ["nonsense", "tcp://", "udp://127.0.0.1:5555"]:
        with pytest.raises(EndpointError) as raised:
            Client(endpoint)
        assert isinstance(raised.value, PstrainError) and isinstance(raised.value, ValueError)
        assert repr(endpoint) in str(raised.value)
