"""OpenSSH for the commands Nix starts (`nix copy`, `nix flake archive`), under the same
host-key policy as `connect`: a private ssh_config file names the host by an alias and
holds everything — the address, user and port, a known_hosts file written from the
policy (the configured known_hosts plus the inventory's host_key), strict checking, no
prompts, a connect timeout, keepalives, the inventory's key, and the jump host reached by
a ProxyCommand that carries the same checks. Nix is pointed at it with
`NIX_SSHOPTS="-F FILE"` and the store URI `ssh://ALIAS` (deploy/nix.py `copy_to` says
why not ssh-ng with Nix 2.8).

Why a file and not options in NIX_SSHOPTS: Nix 2.8 splits NIX_SSHOPTS on whitespace
with no quoting (NixOS/nix 2.8.0, src/libstore/ssh.cc, `SSHMaster::addCommonSSHOpts`:
`tokenizeString<Strings>(getEnv("NIX_SSHOPTS")…)`), so a ProxyCommand, which has spaces,
cannot pass through it; newer Nix shell-splits it (src/libutil/strings.cc,
`shellSplitString`: "Used for NIX_SSHOPTS handling, which previously used
`tokenizeString`"). "-F FILE" reads the same under both. It also keeps ~/.ssh/config out,
as the paramiko side does.

Why a ProxyCommand and not `-J`/ProxyJump: ssh_config(5) of OpenSSH 9.2p1 (Debian
bookworm, `ProxyJump`): "the configuration for the destination host (either supplied via
the command-line or the configuration file) is not generally applied to jump hosts" —
the jump host's key would be checked against ~/.ssh/known_hosts only. The ProxyCommand's
own ssh runs with `-F /dev/null` and explicit options, so it checks the jump host's key
against the same generated known_hosts.

Why the alias: the address (IPv6 too) and the port stay out of the store URI, which Nix
2.8 and current Nix parse differently; OpenSSH still checks the host key under the real
address (ssh_config(5), `HostKeyAlias`: "Specifies an alias that should be used instead
of the real host name when looking up or saving the host key" — we set none, so the
HostName is used).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from hydradeploy.inventory import Host
from hydradeploy.transport import hostkeys, target
from hydradeploy.transport.errors import BadTarget
from hydradeploy.transport.ssh import (
    CONNECT_TIMEOUT,
    CONNECTIONS,
    KEEPALIVE_S,
    _count_lock,
    sudo_prefix,
)

# An alias is a plain name: ssh_config(5) treats `*`, `?`, `!` and `,` in a Host line
# as patterns, and Nix 2.8 refuses a store host starting with '-' (ssh.cc, SSHMaster).
_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def known_hosts_text(host: Host) -> str:
    """The known_hosts lines the policy trusts for `host` (and its jump host)."""
    where = target.endpoint(host)
    keys = hostkeys.trusted(host, where, target.jump(host))
    lines = []
    for name in keys:
        for kind, key in keys[name].items():
            lines.append(f"{name} {kind} {key.get_base64()}")
    return "".join(f"{ln}\n" for ln in sorted(lines))


def alias(host: Host) -> str:
    if not _ALIAS_RE.match(host.name):
        raise BadTarget(f"{host.name}: host name cannot be used as an ssh_config alias")
    return f"hydra-{host.name}"


def _arg(value: str, host: Host, what: str) -> str:
    """A value for an ssh_config line: '%' escaped (ssh_config(5), TOKENS: "A literal
    '%'" is "%%"), double-quoted when it has spaces; newlines and quotes refused."""
    if any(c in value for c in '"\n\r'):
        raise BadTarget(f"{host.name}: {what} {value!r}: quotes and newlines are not allowed")
    value = value.replace("%", "%%")
    return f'"{value}"' if any(c.isspace() for c in value) else value


def _checks(host: Host, known_hosts: Path) -> list[tuple[str, str]]:
    """The options every connection of this host carries (target and jump host)."""
    # Each keyword is in openssh-portable readconf.c's `keywords` table @V_9_2_P1 and
    # described in ssh_config(5) of 9.2p1.
    opts = [
        ("StrictHostKeyChecking", "yes"),
        ("UserKnownHostsFile", _arg(str(known_hosts), host, "known_hosts")),
        ("GlobalKnownHostsFile", "/dev/null"),
        ("BatchMode", "yes"),
        ("ConnectTimeout", str(int(CONNECT_TIMEOUT))),
        # a dead link ends the copy instead of hanging it (as paramiko's keepalive does)
        ("ServerAliveInterval", str(KEEPALIVE_S)),
        ("ServerAliveCountMax", "3"),
    ]
    if host.ssh.key is not None:
        opts += [("IdentityFile", _arg(str(host.ssh.key), host, "ssh.key")),
                 ("IdentitiesOnly", "yes")]  # fmt: skip
    return opts


def config_text(host: Host, known_hosts: Path, *, compress: bool = False) -> str:
    """The ssh_config that reaches `host` as `alias(host)` under the policy."""
    where = target.endpoint(host)
    lines = [
        f"Host {alias(host)}",
        f"  HostName {where.address}",
        f"  User {where.user}",
        f"  Port {where.port}",
        *(f"  {k} {v}" for k, v in _checks(host, known_hosts)),
    ]
    if compress:
        lines.append("  Compression yes")
    hop = target.jump(host)
    if hop is not None:
        inner = ["ssh", "-F", "/dev/null", "-W", "%h:%p", "-p", str(hop.port)]
        for k, v in _checks(host, known_hosts):
            inner += ["-o", f"{k}={v.strip(chr(34))}"]
        inner.append(f"{hop.user}@{hop.address}")
        # ssh runs a ProxyCommand with the user's shell (ssh_config(5)): shell quoting.
        # %h/%p stay tokens; '%' in the paths was doubled by _arg.
        lines.append(f"  ProxyCommand {shlex.join(inner)}")
    return "".join(f"{ln}\n" for ln in lines)


def store_uri(host: Host, scheme: str = "ssh") -> str:
    """The Nix store URI of `host` through `alias(host)`. A non-root user with
    `ssh.sudo` runs the remote end under `sudo -n`: `remote-program` is the command
    Nix runs over ssh (NixOS/nix 2.8.0 src/libstore/legacy-ssh-store.cc: `fmt("%s
    --serve --write", remoteProgram)`; ssh-store.cc: `fmt("%s --stdio", remoteProgram)`),
    percent-decoded from the URI (src/libutil/url.cc, `decodeQuery`). As root, the remote
    `nix-store --serve --write` opens the store itself and adds paths without signature
    checks (src/nix-store/nix-store.cc, `cmdAddToStoreNar`: `addToStore(…, NoCheckSigs)`).
    A plain user goes through the host's daemon, which keeps checking signatures for
    users outside `trusted-users` (src/libstore/daemon.cc: `if (!trusted &&
    dontCheckSigs) dontCheckSigs = false`) and then refuses our unsigned paths: such a
    user needs `ssh.sudo` or a place in `nix.settings.trusted-users`."""
    uri = f"{scheme}://{alias(host)}"
    if sudo_prefix(host):
        program = "nix-daemon" if scheme == "ssh-ng" else "nix-store"
        uri += "?remote-program=" + quote(shlex.join([*sudo_prefix(host)[:-1], program]))
    return uri


def count_connection(host: Host) -> None:
    """One OpenSSH connection a Nix command opens, in the same per-host count as
    paramiko's. One per command: an SSH store keeps at most `max-connections`
    connections, default 1 (NixOS/nix 2.8.0 src/libstore/remote-store.hh and
    legacy-ssh-store.cc, `maxConnections{…, 1, "max-connections", …}`), and starts an
    ssh master only when that is above 1 (ssh-store.cc: "Use SSH master only if using
    more than 1 connection")."""
    with _count_lock:
        CONNECTIONS[host.name] += 1


@contextlib.contextmanager
def nix_sshopts(host: Host, *, compress: bool = False) -> Iterator[str]:
    """NIX_SSHOPTS ("-F FILE") for `host`, with the ssh_config and the policy's
    known_hosts in a private temp dir that is removed afterwards."""
    text = known_hosts_text(host)
    tmp = Path(tempfile.mkdtemp(prefix="hydradeploy-ssh-"))
    if any(c.isspace() for c in str(tmp)):  # Nix 2.8 splits NIX_SSHOPTS on whitespace
        shutil.rmtree(tmp)
        tmp = Path(tempfile.mkdtemp(prefix="hydradeploy-ssh-", dir="/tmp"))
    try:
        kh = tmp / "known_hosts"
        kh.write_text(text)
        cfg = tmp / "ssh_config"
        cfg.write_text(config_text(host, kh, compress=compress))
        yield f"-F {cfg}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
