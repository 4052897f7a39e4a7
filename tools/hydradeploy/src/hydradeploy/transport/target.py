"""Where to connect: the host's SSH endpoint and its jump host, validated before any
connection is tried (a bad port or an empty user is a one-line error naming the host,
never a traceback or a silently different port or user)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hydradeploy.inventory import Host
from hydradeploy.inventory_schema import is_target_host
from hydradeploy.transport.errors import BadTarget

# user names as useradd accepts them by default (shadow-utils NAME_REGEX); kept loose
# enough for the usual ones and strict enough to refuse "", spaces and "@".
_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")


@dataclass(frozen=True)
class Endpoint:
    user: str
    address: str
    port: int

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH (and paramiko) look up in known_hosts."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


def _user(host: Host, user: str, where: str) -> str:
    if not _USER_RE.match(user):
        raise BadTarget(f"{host.name}: {where}: user {user!r} is not a valid user name")
    return user


def _port(host: Host, text: str, where: str) -> int:
    if not text.isdigit():
        raise BadTarget(f"{host.name}: {where}: port {text!r} is not a number")
    port = int(text)
    if not 0 < port < 65536:
        raise BadTarget(f"{host.name}: {where}: port {port} is out of range (1-65535)")
    return port


def _address(host: Host, text: str, where: str) -> str:
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if not bare or not is_target_host(bare):  # the inventory's own rule for target_host
        raise BadTarget(f"{host.name}: {where}: {text!r} is not a host name or address")
    return bare


def endpoint(host: Host) -> Endpoint:
    """user@address:port of the host itself (`target_host` when the inventory sets one,
    else `address`)."""
    address = host.target_host or host.address
    return Endpoint(
        _user(host, host.ssh.user, "ssh.user"),
        _address(host, address, "target_host" if host.target_host else "address"),
        _port(host, str(host.ssh.port), "ssh.port"),
    )


def jump(host: Host) -> Endpoint | None:
    """The jump host from `ssh.jump` ("[user@]host[:port]", IPv6 in brackets); its user
    defaults to the host's user."""
    spec = host.ssh.jump
    if spec is None:
        return None
    where = f"ssh.jump {spec!r}"
    user, at, rest = spec.rpartition("@")
    if at and not user:
        raise BadTarget(f"{host.name}: {where}: the user before '@' is empty")
    if rest.startswith("["):
        addr, bracket, tail = rest.partition("]")
        if not bracket:
            raise BadTarget(f"{host.name}: {where}: missing ']'")
        addr += "]"
        if tail and not tail.startswith(":"):
            raise BadTarget(f"{host.name}: {where}: expected ':PORT' after ']'")
        port_text = tail[1:] if tail else "22"
    elif rest.count(":") == 1:
        addr, _, port_text = rest.partition(":")
    else:
        addr, port_text = rest, "22"
    return Endpoint(
        _user(host, user or host.ssh.user, where),
        _address(host, addr, where),
        _port(host, port_text, where),
    )


def validate(hosts: Iterable[Host]) -> None:
    """Raise BadTarget (exit 2) for the first host whose SSH settings cannot work."""
    for h in hosts:
        endpoint(h)
        jump(h)
