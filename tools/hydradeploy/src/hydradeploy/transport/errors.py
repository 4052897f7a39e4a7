"""What can go wrong reaching a host; every message names the host (and the command)."""

from __future__ import annotations

from hydradeploy.errors import UserError


class RemoteError(Exception):
    """A remote command could not be run or failed; the message names host and command."""


class Unreachable(RemoteError):
    """No SSH session: refused, timed out, host key refused, authentication failed."""


class HostKeyRefused(Unreachable):
    """The host presented a key the host-key policy does not trust (hostkeys.py)."""


class HostKeyChanged(HostKeyRefused):
    """The host presented a key other than the one the policy knows for it: a
    reinstalled host or a man in the middle. Retrying cannot help."""


class ConnectionLost(RemoteError):
    pass


class RemoteTimeout(RemoteError):
    pass


class BadTarget(UserError):
    """The inventory's SSH settings for a host cannot work (bad jump host, port, user):
    found before any connection is tried; exit status 2."""
