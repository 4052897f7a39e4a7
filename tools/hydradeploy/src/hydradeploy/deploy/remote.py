"""Kept for imports elsewhere in the package: the SSH transport lives in
`hydradeploy.transport` (the one module that imports paramiko); new code imports it
from there."""

from __future__ import annotations

from hydradeploy.transport import (
    CONNECT_TIMEOUT,
    CONNECTIONS,
    ConnectionLost,
    RemoteError,
    RemoteTimeout,
    Result,
    Unreachable,
    script,
)
from hydradeploy.transport import Connection as Remote

__all__ = [
    "CONNECTIONS",
    "CONNECT_TIMEOUT",
    "ConnectionLost",
    "Remote",
    "RemoteError",
    "RemoteTimeout",
    "Result",
    "Unreachable",
    "script",
]
