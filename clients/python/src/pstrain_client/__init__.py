"""A Python client of the pstrain parameter server (wire protocol 7; docs/protocol.md).

    from pstrain_client import Client
    with Client("tcp://127.0.0.1:5555") as client:
        print(client.status()["version"])
"""

from .client import Client, LeaseGrant, Snapshot
from .codec import PROTOCOL_VERSION, ModelDescriptor, TensorSpec
from .datasets import fingerprint, load_csv
from .errors import (
    ERROR_CLASSES, DatasetMismatchError, DuplicateWorkerError, KeyOutOfRangeError,
    LayoutMismatchError, LeaseLostError, MalformedError, NonFiniteError, NotJoinedError,
    EndpointError, ProtocolError, PstrainError, PstrainTimeoutError, QuarantinedError,
    ReplayedError,
    ServerError, ShardMismatchError, UnexpectedMessageError, UnknownKeyListError,
    UnknownTypeError, UnsupportedVersionError, VersionMismatchError,
)

__all__ = [
    "Client", "Snapshot", "LeaseGrant", "ModelDescriptor", "TensorSpec", "PROTOCOL_VERSION", "fingerprint",
    "load_csv", "ERROR_CLASSES", "PstrainError", "ServerError", "ProtocolError",
    "PstrainTimeoutError", "EndpointError", "MalformedError", "UnsupportedVersionError", "UnknownTypeError",
    "NotJoinedError", "DuplicateWorkerError", "LayoutMismatchError", "ShardMismatchError",
    "VersionMismatchError", "ReplayedError", "UnexpectedMessageError", "NonFiniteError",
    "LeaseLostError", "DatasetMismatchError", "QuarantinedError", "UnknownKeyListError",
    "KeyOutOfRangeError",
]
