"""Collect each host's ed25519 host key over SSH, verified before it is trusted.

Only the SSH key exchange is needed (no login): the server proves it holds the private
half of the key it presents. That key is trusted only if it matches what we already
know — the inventory's host_key, or the ed25519 entry of the host's known_hosts file —
or, with --accept-new, when nothing is known yet (trust on first use, shown with its
fingerprint). A key that differs from a known one is refused: the host was reinstalled
or someone is in the middle.
"""

from __future__ import annotations

import shlex
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydradeploy.inventory import Host
from hydradeploy.secrets import age
from hydradeploy.secrets.keys import InvalidKey, PublicKey, parse_public_key
from hydradeploy.secrets.recipients import (
    build_keyring,
    diff_recipients,
    read_host_keys,
    render_host_keys,
    render_rules,
)
from hydradeploy.secrets.store import write_atomically
from hydradeploy.secrets.workspace import Workspace

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Collected:
    host: str
    key: PublicKey | None
    status: str  # verified | new | mismatch | unreachable | unknown
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("verified", "new")


def known_hosts_file(host: Host) -> Path:
    return host.ssh.known_hosts or Path.home() / ".ssh" / "known_hosts"


def _known_key(host: Host) -> tuple[PublicKey | None, str]:
    """The ed25519 key we already trust for this host, and where it comes from."""
    if host.ssh.host_key:
        try:
            return parse_public_key(host.ssh.host_key, ed25519_only=True), "inventory host_key"
        except InvalidKey:
            pass  # an invalid inventory key is reported by the keyring; try known_hosts
    import paramiko

    path = known_hosts_file(host)
    try:
        known = paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException):
        return None, ""
    names = [host.address] if host.ssh.port == 22 else [f"[{host.address}]:{host.ssh.port}"]
    for name in names:
        entry = known.lookup(name)
        if entry is not None and "ssh-ed25519" in entry:
            blob: bytes = entry["ssh-ed25519"].asbytes()
            return PublicKey("ssh-ed25519", blob), str(path)
    return None, ""


def presented_key(host: Host, timeout: float = CONNECT_TIMEOUT) -> PublicKey:
    """Run the SSH key exchange with the host (ed25519 only) and return the key it
    proved to hold. Raises OSError or paramiko.SSHException."""
    import paramiko

    sock: Any
    if host.ssh.jump:
        target = f"{host.address}:{host.ssh.port}"
        sock = paramiko.ProxyCommand(
            " ".join(shlex.quote(a) for a in ["ssh", "-W", target, host.ssh.jump])
        )
    else:
        sock = socket.create_connection((host.address, host.ssh.port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.get_security_options().key_types = ["ssh-ed25519"]
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return PublicKey("ssh-ed25519", key.asbytes())
    finally:
        transport.close()


def collect_one(host: Host, accept_new: bool, timeout: float = CONNECT_TIMEOUT) -> Collected:
    import paramiko

    known, source = _known_key(host)
    try:
        key = presented_key(host, timeout)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        reason = str(exc) or type(exc).__name__
        if "Incompatible" in reason or "no acceptable host key" in reason:
            reason = "the host offers no ed25519 host key"
        return Collected(
            host.name, None, "unreachable", f"{host.address}:{host.ssh.port}: {reason}"
        )
    if known is not None:
        if known == key:
            return Collected(host.name, key, "verified", f"matches {source}")
        return Collected(
            host.name,
            None,
            "mismatch",
            f"presented {key.fingerprint}, but {source} has {known.fingerprint}: "
            "reinstalled host or man in the middle; fix known_hosts/the inventory first",
        )
    if accept_new:
        return Collected(host.name, key, "new", "trusted on first use (--accept-new)")
    return Collected(
        host.name,
        None,
        "unknown",
        f"no ed25519 key for {host.address} in {known_hosts_file(host)} or the inventory; "
        f"check {key.fingerprint} out of band, then rerun with --accept-new",
    )


def collect(
    hosts: list[Host], accept_new: bool, timeout: float = CONNECT_TIMEOUT
) -> list[Collected]:
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        return list(pool.map(lambda h: collect_one(h, accept_new, timeout), hosts))


def record_host_keys(
    ws: Workspace, results: list[Collected]
) -> tuple[list[dict[str, str]], list[str], list[str]]:
    """When every host was verified, write secrets/host-keys.toml and the rules in one
    atomic step. Returns a row per host (with how its key changed) and the files whose
    recipients no longer match (they need `secrets rekey`), and the problems that kept
    the rules from being regenerated (e.g. an invalid admin key)."""
    stored: dict[str, PublicKey] = {}
    for name, text in read_host_keys(ws.store.host_keys_path).items():
        try:
            stored[name] = parse_public_key(text, ed25519_only=True)
        except InvalidKey:
            continue
    rows = []
    for r in results:
        change = ""
        if r.key is not None:
            old = stored.get(r.host)
            change = "new" if old is None else ("unchanged" if old == r.key else "CHANGED")
        rows.append(
            {
                "host": r.host,
                "status": r.status,
                "fingerprint": r.key.fingerprint if r.key else "",
                "change": change,
                "detail": r.detail,
            }
        )
    if not all(r.ok for r in results):
        return rows, [], []
    inv = ws.inventory
    new = {n: k for n, k in stored.items() if n in inv.hosts}
    new.update({r.host: r.key for r in results if r.key is not None})
    ring = build_keyring(inv, ws.store, {n: k.line for n, k in new.items()})
    needs_rekey = []
    for f in ws.store.files():
        try:
            stanzas = age.parse_header(ws.store.read(f))
        except age.AgeError:
            needs_rekey.append(f.rel)  # corrupt: `check` says why
            continue
        if not diff_recipients(ring, f, stanzas).ok:
            needs_rekey.append(f.rel)
    staged = {ws.store.host_keys_path: render_host_keys(new).encode()}
    if not ring.problems:
        staged[ws.store.rules_path] = render_rules(ring, ws.store.files()).encode()
    write_atomically(staged)
    return rows, needs_rekey, ring.problems
