"""The messages of the golden frames in Tests/GoldenFrames, which the Python codec
(tests/test_golden.py) and the Swift codec (Tests/WireProtocolTests/GoldenFrameTests.swift,
which builds the same messages) must both encode to exactly those bytes and decode back.

`python tests/golden.py` wrote the files once; rerun it only on purpose (a protocol
change), and change the Swift test's messages alike.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from pstrain_client.codec import (  # noqa: E402
    ErrorReply, Heartbeat, Join, Lease, LeaseRequest, Leave, Left, ModelDescriptor, NoLease,
    Push, Status, StatusRequest, Tensor, TensorSpec, Weights, encode,
)

#: Tests/GoldenFrames, from clients/python/tests.
DIRECTORY = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "Tests", "GoldenFrames"))

F64, F32 = 1, 2


def _weight() -> Tensor:
    # A zero, a negative zero, a subnormal, the largest finite and an inexact decimal.
    values = np.array([[0.5, -0.25], [0.0, -0.0], [5e-324, 1.7976931348623157e308]])
    values[1, 1] = -0.0
    return Tensor("layer1.weight", values.reshape(3, 2), F64)


def _bias32() -> Tensor:
    return Tensor("layer1.bias", np.array([0.15625, -2.5], dtype=np.float32), F32)


def _bias64() -> Tensor:
    return Tensor("layer1.bias", np.array([0.1, -3.0]), F64)


def _model() -> ModelDescriptor:
    return ModelDescriptor(
        "softmax", [TensorSpec("layer1.weight", (3, 2), F64), TensorSpec("layer1.bias", (2,), F32)])


def _push() -> Push:
    return Push(3, 5, 41, [0, 7, 1346], [_weight(), _bias32()])


def _status(full: bool) -> Status:
    fields = dict(
        mode="async", version=42, gradients_applied=40, rejected=2, learning_rate=0.05,
        required_workers=1, model="softmax", parameters=[_weight(), _bias64()],
        workers=[dict(id=3, shard=(1, 4), pushes_applied=5, last_sequence=5, staleness=1)],
        workers_left=1, audit_records_sent=7, epochs=0, epoch=0, rows_applied_in_epoch=0,
        dataset_rows=1347, workers_dead=0, optimizer="sgd", current_learning_rate=0.05,
        staleness=0, server_shard=(0, 1), parameter_offset=0, total_parameters=8,
        audits_reported=0, audits_failed=0, last_audit=None, checkpoints=None, resume=None,
        last_evaluation=None,
        quarantine=dict(enabled=False, workers=[], rollbacks=0, versions_rolled_back=0),
        keyed_table=None)
    if full:
        fields.update(
            mode="ssp", staleness=2, epochs=3, epoch=1, rows_applied_in_epoch=640,
            workers_dead=1, optimizer="adam(lr 0.001, beta1 0.9)", current_learning_rate=0.0005,
            server_shard=(1, 2), parameter_offset=8, total_parameters=16, audits_reported=9,
            audits_failed=1,
            last_audit=dict(
                worker=3, sequence=5, passed=False, max_relative_error=0.75, conclusive=True,
                gradient_magnitude=2.5, applied_at=40, failed_checks=["finite_differences", "replay"],
                replay_mismatches=4, confirmed=True),
            checkpoints=dict(
                durable_version=40, durable_age_ms=1500, failures=3, consecutive_failures=1,
                failing_for_ms=200, last_error="disk full: é", last_error_age_ms=100),
            resume=dict(
                checkpoint_file="checkpoint-40.pst", version=40, gradients_applied=38,
                job_complete=False, rows_to_lease=12,
                workers=[dict(id=3, last_sequence=4), dict(id=9, last_sequence=11)]),
            last_evaluation=dict(version=40, rows=450, loss=0.125, accuracy=0.96, auc=None),
            quarantine=dict(
                enabled=True,
                workers=[dict(id=9, sequence=12, failed_checks=["replay"], max_relative_error=0.0,
                              replay_mismatches=2, quarantined_at=39, rolled_back_to=30)],
                rollbacks=1, versions_rolled_back=9),
            keyed_table=dict(
                model="fm-8.h20", width=9, rows_touched=100, row_bytes=8000,
                bytes_allocated=16384, pulls=10, pushes=9, keys_pulled=300, keys_pushed=270,
                key_cache_hits=8, key_cache_misses=1, examples=90, bytes_received=5000,
                bytes_sent=7000))
    return Status(fields)


#: Name -> (message, values-frame threshold in bytes). A threshold of 16 puts every
#: float64 tensor of 2 or more values in a frame of its own: NAME.0.bin, NAME.1.bin, ...
MESSAGES = {
    "status-request": (StatusRequest(), None),
    "join": (Join(3, _model(), 1347, 0x0123456789ABCDEF, (1, 4)), None),
    "push": (_push(), None),
    "push-values-frames": (_push(), 16),
    "weights": (Weights(42, 5, [_weight(), _bias32()], [0x5, 0x8000000000000000]), None),
    "weights-values-frames": (Weights(7, 0, [_weight(), _bias64()], []), 16),
    "leave": (Leave(3), None),
    "left": (Left(3), None),
    "heartbeat": (Heartbeat(3), None),
    "lease-request": (LeaseRequest(3), None),
    "lease": (Lease(2, 64, 32, Weights(9, 4, [_weight(), _bias32()], [1])), None),
    "no-lease": (NoLease(False, 250), None),
    "error": (ErrorReply(6, "model softmax differs from the server's — ✓"), None),
    "status": (_status(False), None),
    "status-full": (_status(True), None),
}


def frames_of(name: str) -> list:
    """The encoded frames of fixture `name`, as bytes."""
    message, threshold = MESSAGES[name]
    frames = encode(message, threshold=threshold or (1 << 62))
    return [f if isinstance(f, bytes) else f.tobytes() for f in frames]


def file_names(name: str, frame_count: int) -> list:
    """NAME.bin for one frame, NAME.0.bin ... for several."""
    if frame_count == 1:
        return [f"{name}.bin"]
    return [f"{name}.{index}.bin" for index in range(frame_count)]


if __name__ == "__main__":
    os.makedirs(DIRECTORY, exist_ok=True)
    for name in MESSAGES:
        frames = frames_of(name)
        for file, frame in zip(file_names(name, len(frames)), frames):
            with open(os.path.join(DIRECTORY, file), "wb") as handle:
                handle.write(frame)
            print(file, len(frame))
