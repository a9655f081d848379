"""Reads pstrain's TensorBoard event files back with the tensorboard package.

    read_tensorboard.py LOGDIR          one JSON object: per run directory under LOGDIR,
                                        its files, its records (framing and CRCs checked
                                        here, independently), the events TensorBoard's
                                        loader read, and every scalar by tag as
                                        [step, value] pairs from EventAccumulator
    read_tensorboard.py --flip FILE     flips one byte in FILE's last record (a copy) and
                                        says whether the CRC check here and TensorBoard's
                                        loader notice

TensorBoard's loader stops quietly at a bad record, so a caller compares the
record count with the loaded count rather than trusting the absence of errors.
"""

import json
import os
import shutil
import struct
import sys
import tempfile

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c


def records(path):
    """The record data of PATH, checking each length and data CRC; raises on damage."""
    with open(path, "rb") as handle:
        data = handle.read()
    found, offset = [], 0
    while offset < len(data):
        header = data[offset : offset + 12]
        if len(header) < 12:
            raise ValueError(f"record {len(found)}: truncated header")
        (length,) = struct.unpack("<Q", header[:8])
        (length_crc,) = struct.unpack("<I", header[8:])
        if masked_crc32c(header[:8]) != length_crc:
            raise ValueError(f"record {len(found)}: length CRC mismatch")
        body = data[offset + 12 : offset + 12 + length]
        footer = data[offset + 12 + length : offset + 16 + length]
        if len(body) < length or len(footer) < 4:
            raise ValueError(f"record {len(found)}: truncated data")
        if masked_crc32c(body) != struct.unpack("<I", footer)[0]:
            raise ValueError(f"record {len(found)}: data CRC mismatch")
        found.append(body)
        offset += 16 + length
    return found


def loaded(path):
    """How many events TensorBoard's own loader reads from PATH."""
    return sum(1 for _ in EventFileLoader(path).Load())


def read_run(directory):
    files = sorted(name for name in os.listdir(directory) if ".tfevents." in name)
    accumulator = EventAccumulator(directory, size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return {
        "files": files,
        "records": sum(len(records(os.path.join(directory, name))) for name in files),
        "loaded": sum(loaded(os.path.join(directory, name)) for name in files),
        "scalars": {
            tag: [[event.step, event.value] for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]
        },
    }


def flip(path):
    count = len(records(path))
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, os.path.basename(path))
        shutil.copy(path, copy)
        with open(copy, "r+b") as handle:
            handle.seek(-6, os.SEEK_END)  # inside the last record's data
            byte = handle.read(1)
            handle.seek(-6, os.SEEK_END)
            handle.write(bytes([byte[0] ^ 0x01]))
        try:
            records(copy)
            crc_refused = False
        except ValueError:
            crc_refused = True
        return {"records": count, "crc_refused": crc_refused, "loaded": loaded(copy)}


def main():
    if sys.argv[1:2] == ["--flip"]:
        print(json.dumps(flip(sys.argv[2])))
        return
    root = sys.argv[1]
    runs = sorted(name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name)))
    print(json.dumps({run: read_run(os.path.join(root, run)) for run in runs}))


if __name__ == "__main__":
    main()
