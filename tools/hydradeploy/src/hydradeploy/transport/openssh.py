"""Options for OpenSSH clients that Nix starts (`nix copy`, `nix flake archive` through
NIX_SSHOPTS), under the same host-key policy as `connect`: a known_hosts file written
from the policy (the configured known_hosts plus the inventory's host_key), strict
checking, no prompts, a connect timeout, the inventory's key, and the jump host reached
by a ProxyCommand that carries the same options.

Why a ProxyCommand and not `-J`: ssh_config(5) of OpenSSH 9.2p1 (Debian bookworm,
`ProxyJump`): "the configuration for the destination host (either supplied via the
command-line or the configuration file) is not generally applied to jump hosts" — with
`-J` the jump host's key would be checked against ~/.ssh/known_hosts only.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hydradeploy.inventory import Host
from hydradeploy.transport import hostkeys, target
from hydradeploy.transport.ssh import CONNECT_TIMEOUT


def known_hosts_text(host: Host) -> str:
    """The known_hosts lines the policy trusts for `host` (and its jump host)."""
    where = target.endpoint(host)
    keys = hostkeys.trusted(host, where, target.jump(host))
    lines = []
    for name in keys:
        for kind, key in keys[name].items():
            lines.append(f"{name} {kind} {key.get_base64()}")
    return "".join(f"{ln}\n" for ln in sorted(lines))


def options(host: Host, known_hosts: Path) -> list[str]:
    """ssh(1) options for `host`, checking keys against `known_hosts`."""
    where = target.endpoint(host)
    common = [
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={int(CONNECT_TIMEOUT)}",
    ]  # fmt: skip
    if host.ssh.key is not None:
        common += ["-i", str(host.ssh.key), "-o", "IdentitiesOnly=yes"]
    opts = ["-p", str(where.port), *common]
    hop = target.jump(host)
    if hop is not None:
        proxy = ["ssh", "-W", "%h:%p", "-p", str(hop.port), *common, f"{hop.user}@{hop.address}"]
        opts += ["-o", f"ProxyCommand={shlex.join(proxy)}"]
    return opts


def store_uri(host: Host, scheme: str = "ssh") -> str:
    """`ssh://user@host` for Nix; IPv6 addresses in brackets."""
    where = target.endpoint(host)
    addr = f"[{where.address}]" if ":" in where.address else where.address
    return f"{scheme}://{where.user}@{addr}"


@contextlib.contextmanager
def nix_sshopts(host: Host) -> Iterator[str]:
    """NIX_SSHOPTS for `host`, with the policy's known_hosts in a private temp file
    that is removed afterwards."""
    text = known_hosts_text(host)
    fd, name = tempfile.mkstemp(prefix="hydradeploy-known_hosts-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        yield shlex.join(options(host, Path(name)))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
