"""The one host-key policy. A host's key is trusted when it is the inventory's
`host_key`, or the entry for the host in the configured known_hosts file (the host's
`ssh.known_hosts`, else ~/.ssh/known_hosts). Nothing else: an unknown key is refused,
never added. Jump hosts go through the same known_hosts file. The only trust on first
use is `secrets hostkeys --accept-new`, which reads the presented key with
`presented_key` and shows its fingerprint before anything is written."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import TYPE_CHECKING

from hydradeploy.inventory import Host
from hydradeploy.transport.errors import HostKeyChanged, HostKeyRefused, Unreachable
from hydradeploy.transport.target import Endpoint

if TYPE_CHECKING:
    import paramiko


def known_hosts_file(host: Host) -> Path:
    """The known_hosts file the policy reads for this host."""
    return host.ssh.known_hosts or Path.home() / ".ssh" / "known_hosts"


def inventory_key(host: Host) -> tuple[str, bytes] | None:
    """(type, blob) of the inventory's `host_key`; a malformed one is an error, never
    skipped (skipping it would fall back to whatever known_hosts says)."""
    if not host.ssh.host_key:
        return None
    fields = host.ssh.host_key.split()
    try:
        if len(fields) < 2:
            raise ValueError("expected 'TYPE BASE64'")
        blob = base64.b64decode(fields[1], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise Unreachable(
            f"{host.name}: inventory ssh.host_key is not a public key: {exc}"
        ) from None
    return fields[0], blob


def known_hosts_key(host: Host, name: str, kind: str) -> tuple[bytes, Path] | None:
    """The KIND key the host's known_hosts file holds for NAME (a known_hosts host
    pattern), and that file; None when the file is missing, unreadable or has none."""
    import paramiko

    path = known_hosts_file(host)
    try:
        known = paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException):
        return None
    entry = known.lookup(name)
    if entry is None or kind not in entry:
        return None
    blob: bytes = entry[kind].asbytes()
    return blob, path


def trusted(host: Host, target: Endpoint, jump: Endpoint | None) -> paramiko.HostKeys:
    """The keys a connection to `host` (and its jump host) may accept."""
    import paramiko

    keys = paramiko.HostKeys()
    path = known_hosts_file(host)
    if path.is_file():
        try:
            keys.load(str(path))
        except (OSError, paramiko.SSHException) as exc:
            raise Unreachable(f"{host.name}: cannot read known_hosts file {path}: {exc}") from None
    elif host.ssh.known_hosts is not None:
        # Configured but absent: refuse rather than silently trusting nothing known.
        raise Unreachable(f"{host.name}: known_hosts file {path} not found")
    own = inventory_key(host)
    if own is not None:
        kind, blob = own
        try:
            key = paramiko.PKey.from_type_string(kind, blob)
        except Exception as exc:  # paramiko raises several types for a bad blob
            raise Unreachable(
                f"{host.name}: inventory ssh.host_key is not a public key: {exc}"
            ) from None
        keys.add(target.known_hosts_name, kind, key)
    del jump  # jump hosts are looked up in the same file under their own names
    return keys


def refusal(host: Host, where: Endpoint, exc: Exception) -> HostKeyRefused:
    """The error, in one line, for a key paramiko refused: HostKeyChanged when it
    differs from the known one, HostKeyRefused when none is known."""
    import paramiko

    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyChanged(
            f"{host.name}: host key of {where.known_hosts_name} changed: it presented "
            f"{exc.key.fingerprint}, expected {exc.expected_key.fingerprint} "
            "(reinstalled host or man in the middle)"
        )
    return HostKeyRefused(
        f"{host.name}: host key of {where.known_hosts_name} is unknown (not in "
        f"{known_hosts_file(host)} nor the inventory's host_key; refused, not added)"
    )
