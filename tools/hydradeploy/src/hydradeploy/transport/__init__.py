"""How hydradeploy reaches a host and runs commands: the one place that imports paramiko.

- `connect(host)` opens one SSH connection with the one host-key policy (`hostkeys`),
  the host's endpoint and jump host validated first (`target`).
- `Pool` keeps one connection per host for a command and knows which server answers
  `k3s kubectl`.
- `local.run` runs a command on this machine (argv, timeout, one-line errors).
"""

from hydradeploy.transport.errors import (
    BadTarget,
    ConnectionLost,
    HostKeyChanged,
    HostKeyRefused,
    RemoteError,
    RemoteTimeout,
    Unreachable,
)
from hydradeploy.transport.result import Result, script
from hydradeploy.transport.ssh import CONNECT_TIMEOUT, CONNECTIONS, Connection, connect

__all__ = [
    "CONNECTIONS",
    "CONNECT_TIMEOUT",
    "BadTarget",
    "Connection",
    "ConnectionLost",
    "HostKeyChanged",
    "HostKeyRefused",
    "RemoteError",
    "RemoteTimeout",
    "Result",
    "Unreachable",
    "connect",
    "script",
]
