"""CURVE keys as `pstrain keygen` writes them (Sources/Roles/Security/CurveKeyFiles.swift):
`NAME.key` holds `public-key = <Z85>` and `secret-key = <Z85>` lines and must be readable
by its owner only; `NAME.pub` holds the public-key line alone."""

from __future__ import annotations

import os
import stat

import zmq
from zmq.utils import z85


def _fields(path: str) -> dict:
    with open(path, "rb") as handle:
        text = handle.read(4096).decode("utf-8", "replace")
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def _z85_key(text: str, what: str) -> bytes:
    data = text.encode("ascii", "replace")
    if len(data) != 40:
        raise ValueError(f"{what} is not a 40-character Z85 CURVE key")
    try:
        if len(z85.decode(data)) != 32:
            raise ValueError
    except Exception:
        raise ValueError(f"{what} is not a valid Z85 CURVE key") from None
    return data


def public_key(value: str) -> bytes:
    """A public key given as a Z85 text or a path to a `.pub` (or `.key`) file, as Z85 bytes."""
    if os.path.exists(value):
        key = _fields(value).get("public-key")
        if key is None:
            raise ValueError(f"{value} has no public-key line; create keys with pstrain keygen")
        return _z85_key(key, f"the public key in {value}")
    return _z85_key(value, "the public key")


def key_pair(secret: str, public: str | None = None) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a `.key` file path (refused when group or others
    may read it, as pstrain refuses it) or a Z85 secret key; the public key is derived
    from the secret one unless given."""
    if os.path.exists(secret):
        mode = stat.S_IMODE(os.stat(secret).st_mode)
        if mode & 0o077:
            raise PermissionError(
                f"secret key file {secret} is readable by others (mode {mode:o}); "
                f"run chmod 600 {secret}")
        text = _fields(secret).get("secret-key")
        if text is None:
            raise ValueError(f"{secret} has no secret-key line; create keys with pstrain keygen")
        secret_key = _z85_key(text, f"the secret key in {secret}")
    else:
        secret_key = _z85_key(secret, "the secret key")
    derived = zmq.curve_public(secret_key)
    return (public_key(public) if public else derived), secret_key
