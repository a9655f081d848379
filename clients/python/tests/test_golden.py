"""The Python codec against the golden frames the Swift codec is tested against too
(Tests/GoldenFrames): every fixture encodes to exactly its bytes and frames, and
decodes back to its message."""

import os

import numpy as np
import pytest

from golden import DIRECTORY, MESSAGES, file_names, frames_of
from pstrain_client import codec
from pstrain_client.codec import Push, Weights


def read_frames(name: str) -> list:
    single = os.path.join(DIRECTORY, f"{name}.bin")
    if os.path.exists(single):
        return [open(single, "rb").read()]
    frames = []
    while os.path.exists(os.path.join(DIRECTORY, f"{name}.{len(frames)}.bin")):
        frames.append(open(os.path.join(DIRECTORY, f"{name}.{len(frames)}.bin"), "rb").read())
    return frames


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_the_python_codec_writes_the_golden_frames(name):
    golden = read_frames(name)
    assert golden, f"no file for {name} in {DIRECTORY}"
    assert frames_of(name) == golden
    _, threshold = MESSAGES[name]
    assert (len(golden) > 1) == (threshold is not None)
    assert codec.encode_bytes(MESSAGES[name][0]) == b"".join(golden)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_the_python_codec_reads_the_golden_frames(name):
    golden = read_frames(name)
    message = codec.decode(golden)
    assert message == MESSAGES[name][0]
    # The one-frame form of the same message reads the same.
    assert codec.decode(b"".join(golden)) == message


def test_every_golden_file_is_a_fixture():
    expected = {file for name in MESSAGES for file in file_names(name, len(frames_of(name)))}
    present = {file for file in os.listdir(DIRECTORY) if file.endswith(".bin")}
    assert present == expected


def test_values_frames_are_the_arrays_themselves():
    """A large float64 tensor goes out as its own array: no copy is made to send it."""
    gradient = np.arange(10_000, dtype=np.float64).reshape(100, 100)
    push = Push(1, 1, 0, [0], [codec.Tensor("w", gradient)])
    frames = codec.encode(push)
    assert len(frames) == 2
    assert isinstance(frames[1], np.ndarray) and np.shares_memory(frames[1], gradient)
    decoded = codec.decode(frames)
    assert decoded == push


def test_decoded_values_are_read_in_place():
    frames = [f if isinstance(f, bytes) else f.tobytes() for f in codec.encode(
        Weights(1, 0, [codec.Tensor("w", np.ones(10_000))]))]
    reply = codec.decode(frames)
    assert not reply.parameters[0].values.flags.writeable
