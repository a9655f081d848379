"""The client against a real `pstrain server` (PSTRAIN_BINARY, or .build/debug/pstrain;
skipped without it): large tensors both ways in values frames, a refusal by the real
server as a typed error, and CURVE with the key files `pstrain keygen` writes."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from pstrain_client import (
    Client, DatasetMismatchError, LayoutMismatchError, ModelDescriptor, PstrainTimeoutError,
    TensorSpec, codec,
)
from test_digits_integration import BINARY, Process

pytestmark = pytest.mark.skipif(not os.access(BINARY, os.X_OK), reason="needs the pstrain binary")


@pytest.fixture
def directory():
    with tempfile.TemporaryDirectory(prefix="pstrain-pyclient-") as path:
        yield path


def start_server(directory, *extra):
    server = Process([BINARY, "server", "--bind", "tcp://127.0.0.1:*", *extra], directory, "server")
    return server, server.line("listening ", within=60).split(" ", 1)[1].strip()


def test_large_tensors_travel_in_values_frames(directory):
    # 64 × 256 float64 weights: 128 KiB, above the 64 KiB of a values frame.
    server, endpoint = start_server(directory, "--model", "mlp:256", "--features", "64",
                                    "--classes", "10", "--lr", "0.5")
    try:
        with Client(endpoint, timeout=30) as client:
            joined = client.join(4, dataset_rows=100, dataset_fingerprint=12345)
            first = joined.weights["layer1.weight"]
            assert first.shape == (64, 256) and joined.version == 0
            gradient = {name: np.ones_like(value) for name, value in joined.weights.items()}
            frames = codec.encode(codec.Push(4, 1, 0, [0], [
                codec.Tensor(s.name, gradient[s.name]) for s in client.layout]))
            assert any(isinstance(frame, np.ndarray) for frame in frames)
            pushed = client.push(gradient, rows=[0, 1])
            assert (pushed.version, pushed.acknowledged) == (1, 1)
            # SGD at 0.5: every weight moved by -0.5, read back from values frames.
            assert np.array_equal(pushed.weights["layer1.weight"], first - 0.5)
            with pytest.raises(DatasetMismatchError):
                client.push(gradient, rows=[100])
            status = client.status()
            assert status["version"] == 1 and status["rejected"] == 1
            assert [w["id"] for w in status["workers"]] == [4]
            assert status["workers"][0]["pushes_applied"] == 1
        with Client(endpoint, timeout=30) as other:
            model = ModelDescriptor("softmax", [TensorSpec("layer1.weight", (64, 10)),
                                                TensorSpec("layer1.bias", (10,))])
            with pytest.raises(LayoutMismatchError):
                other.join(5, model=model, dataset_rows=100, dataset_fingerprint=12345)
    finally:
        server.stop()


def test_curve_with_the_key_files_of_pstrain_keygen(directory):
    keys, clients = os.path.join(directory, "keys"), os.path.join(directory, "clients")
    for out, name in ((keys, "server"), (clients, "client"), (keys, "stranger")):
        assert Process([BINARY, "keygen", "--out", out, "--name", name], directory,
                       f"keygen-{name}").wait(within=60) == 0
    server, endpoint = start_server(
        directory, "--curve-secret-key", os.path.join(keys, "server.key"),
        "--authorized-keys", clients)
    try:
        with Client(endpoint, server_public_key=os.path.join(keys, "server.pub"),
                    secret_key=os.path.join(clients, "client.key"), timeout=30) as client:
            assert client.status()["model"] == "chain"
        # A key the server does not know gets no answer.
        with Client(endpoint, server_public_key=os.path.join(keys, "server.pub"),
                    secret_key=os.path.join(keys, "stranger.key"), timeout=1) as stranger:
            with pytest.raises(PstrainTimeoutError, match="waited for a status"):
                stranger.status()
        os.chmod(os.path.join(clients, "client.key"), 0o644)
        with pytest.raises(PermissionError, match="chmod 600"):
            Client(endpoint, server_public_key=os.path.join(keys, "server.pub"),
                   secret_key=os.path.join(clients, "client.key"))
    finally:
        server.stop()


def test_leased_work(directory):
    server, endpoint = start_server(directory, "--epochs", "1", "--chunk-rows", "4", "--stay")
    try:
        with Client(endpoint, timeout=30) as client:
            client.join(2, dataset_rows=6, dataset_fingerprint=99)
            zero = {spec.name: np.zeros(spec.shape) for spec in client.layout}
            grant = client.lease()
            assert (grant.epoch, grant.rows) == (0, range(0, 4))
            client.push(zero, rows=[0, 1])
            client.push(zero, rows=[2, 3])
            grant = client.lease()
            assert grant.rows == range(4, 6)
            assert client.push(zero, rows=[4, 5]).version == 3
            answer = client.lease()
            assert isinstance(answer, codec.NoLease) and answer.finished
    finally:
        server.stop()
