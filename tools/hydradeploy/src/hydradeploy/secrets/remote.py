"""Prove that each host can decrypt the files it needs, on the host itself: the
ciphertext goes in over the tool's one SSH transport (host key checked, sudo only for
a non-root user), `age -d` runs there with the host's
own /etc/ssh/ssh_host_ed25519_key — the key agenix uses — and the plaintext goes to
/dev/null. Nothing secret travels back."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hydradeploy.inventory import Host
from hydradeploy.transport import Connection, RemoteError, RemoteTimeout, connect
from hydradeploy.transport.pool import Connector

# agenix decrypts with the host's ed25519/rsa `services.openssh.hostKeys` (upstream:
# ryantm/agenix modules/age.nix @b027ee29d959, `identityPaths` default); NixOS's
# ed25519 host key is at this path (nixpkgs nixos/modules/services/networking/ssh/
# sshd.nix `hostKeys` default, stored copy @00976b194fe3).
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
REMOTE_TIMEOUT = 30.0


@dataclass(frozen=True)
class RemoteResult:
    host: str
    file: str
    ok: bool
    detail: str = ""


def decrypt_command() -> list[str]:
    return ["age", "-d", "-i", HOST_KEY_PATH, "-o", "/dev/null"]


def _decrypt_remotely(conn: Connection, data: bytes, timeout: float) -> tuple[bool, str]:
    try:
        res = conn.run(decrypt_command(), stdin=data, timeout=timeout, what="age -d")
    except RemoteTimeout:
        return False, f"age did not finish within {timeout:.0f} s"
    if res.rc == 127:  # POSIX sh: command not found (not verified against a shell source)
        return False, "age is not installed on the host (add pkgs.age to its packages)"
    if res.rc != 0:
        lines = [
            ln.removeprefix("age: error: ")
            for ln in res.stderr.splitlines()
            if "report unexpected" not in ln
        ]
        return False, "; ".join(ln.strip() for ln in lines if ln.strip()) or f"exit {res.rc}"
    return True, ""


def _check_host(
    host: Host, files: Mapping[str, bytes], timeout: float, connector: Connector
) -> list[RemoteResult]:
    try:
        conn = connector(host)
    except RemoteError as exc:
        return [RemoteResult(host.name, f, False, f"cannot connect: {exc}") for f in files]
    with conn:
        out = []
        for rel, data in files.items():
            try:
                ok, detail = _decrypt_remotely(conn, data, timeout)
            except RemoteError as exc:
                ok, detail = False, str(exc)
            out.append(RemoteResult(host.name, rel, ok, detail))
        return out


def check_on_hosts(
    work: Mapping[str, tuple[Host, Mapping[str, bytes]]],
    timeout: float = REMOTE_TIMEOUT,
    connector: Connector = connect,
) -> list[RemoteResult]:
    """work: host name -> (host, {file: ciphertext}); one SSH connection per host."""
    if not work:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(work))) as pool:
        batches = pool.map(
            lambda item: _check_host(item[0], item[1], timeout, connector), work.values()
        )
        return [r for batch in batches for r in batch]
