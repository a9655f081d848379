"""The data a dense worker reads, as pstrain reads it: a CSV file with a header,
features in column order and the label in the column named `label` (else the last),
and the dataset identity a `join` carries (row count and FNV-1a fingerprint)."""

from __future__ import annotations

from typing import Optional

import numpy as np

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1


def load_csv(path: str, label_column: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of a CSV file: features `rows x D` float64, labels float64."""
    with open(path, encoding="utf-8") as handle:
        header = [name.strip() for name in handle.readline().strip().split(",")]
    label = label_column or ("label" if "label" in header else header[-1])
    if label not in header:
        raise ValueError(f"{path} has no column {label!r}")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    index = header.index(label)
    features = np.ascontiguousarray(np.delete(table, index, axis=1))
    return features, np.ascontiguousarray(table[:, index])


def fingerprint(features: np.ndarray, labels: np.ndarray) -> int:
    """`Dataset.fingerprint`: FNV-1a over every row's feature bits, then its label's,
    each float64 little-endian, so the server can tell that workers read the same data."""
    table = np.concatenate([features, labels.reshape(-1, 1)], axis=1)
    data = np.ascontiguousarray(table, dtype="<f8").tobytes()
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK
    return value
