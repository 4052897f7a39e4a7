"""Collect each host's ed25519 host key over SSH, verified before it is trusted.

Only the SSH key exchange is needed (no login, `transport.ssh.presented_key`; a jump
host is reached under the transport's host-key policy): the server proves it holds the
private half of the key it presents. That key is trusted only if it matches what we already
know — the inventory's host_key, or the ed25519 entry of the host's known_hosts file —
or, with --accept-new, when nothing is known yet (trust on first use, shown with its
fingerprint). A key that differs from a known one is refused: the host was reinstalled
or someone is in the middle.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

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
from hydradeploy.transport import RemoteError, hostkeys, target
from hydradeploy.transport.ssh import presented_key

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


def _known_key(host: Host) -> tuple[PublicKey | None, str]:
    """The ed25519 key the transport's policy already trusts for this host, and where it
    comes from (the inventory's host_key first, then the known_hosts file)."""
    import paramiko

    own = hostkeys.inventory_key(host)  # malformed: Unreachable naming the host
    if own is not None and own[0] == "ssh-ed25519":
        return PublicKey(own[0], own[1]), "inventory host_key"
    path = hostkeys.known_hosts_file(host)
    try:
        known = paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException):
        return None, ""
    entry = known.lookup(target.endpoint(host).known_hosts_name)
    if entry is not None and "ssh-ed25519" in entry:
        blob: bytes = entry["ssh-ed25519"].asbytes()
        return PublicKey("ssh-ed25519", blob), str(path)
    return None, ""


def collect_one(host: Host, accept_new: bool, timeout: float = CONNECT_TIMEOUT) -> Collected:
    try:
        known, source = _known_key(host)
        kind, blob = presented_key(host, timeout=timeout)
    except (RemoteError, InvalidKey) as exc:
        return Collected(host.name, None, "unreachable", str(exc))
    key = PublicKey(kind, blob)
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
        f"no ed25519 key for {target.endpoint(host).known_hosts_name} in {hostkeys.known_hosts_file(host)} or the "
        f"inventory; check {key.fingerprint} out of band, then rerun with --accept-new",
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
