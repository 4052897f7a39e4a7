"""Prove that each host can decrypt the files it needs, on the host itself: the
ciphertext goes in over SSH (host key verified), `age -d` runs there with the host's
own /etc/ssh/ssh_host_ed25519_key — the key agenix uses — and the plaintext goes to
/dev/null. Nothing secret travels back."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hydradeploy.inventory import Host
from hydradeploy.secrets.keys import InvalidKey, parse_public_key

HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
REMOTE_TIMEOUT = 30.0


@dataclass(frozen=True)
class RemoteResult:
    host: str
    file: str
    ok: bool
    detail: str = ""


def _connect(host: Host, timeout: float) -> Any:
    import paramiko
    from fabric import Connection

    kwargs: dict[str, Any] = {"banner_timeout": timeout, "auth_timeout": timeout}
    if host.ssh.key:
        kwargs["key_filename"] = str(host.ssh.key)
    gateway = None
    if host.ssh.jump:
        gateway = Connection(host.ssh.jump, connect_timeout=timeout)
        # Fabric would auto-add an unknown jump host; verify it like any host.
        gateway.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    conn = Connection(
        host=host.address,
        user=host.ssh.user,
        port=host.ssh.port,
        connect_timeout=timeout,
        connect_kwargs=kwargs,
        gateway=gateway,
    )
    # Host keys are always checked: known_hosts, plus the inventory's host_key.
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if host.ssh.known_hosts and host.ssh.known_hosts.is_file():
        conn.client.load_host_keys(str(host.ssh.known_hosts))
    if host.ssh.host_key:
        try:
            key = parse_public_key(host.ssh.host_key, ed25519_only=True)
            name = host.address if host.ssh.port == 22 else f"[{host.address}]:{host.ssh.port}"
            conn.client.get_host_keys().add(name, key.kind, paramiko.Ed25519Key(data=key.blob))
        except InvalidKey:
            pass
    conn.open()
    return conn


def _decrypt_remotely(conn: Any, host: Host, data: bytes, timeout: float) -> tuple[bool, str]:
    argv = ["age", "-d", "-i", HOST_KEY_PATH, "-o", "/dev/null"]
    if host.ssh.sudo:
        argv = ["sudo", "-n", "--", *argv]
    stdin, stdout, stderr = conn.client.exec_command(
        " ".join(shlex.quote(a) for a in argv), timeout=timeout
    )
    stdin.write(data)
    stdin.channel.shutdown_write()
    if not stdout.channel.status_event.wait(timeout):
        stdout.channel.close()
        return False, f"age did not finish within {timeout:.0f} s"
    status = stdout.channel.recv_exit_status()
    err = stderr.read().decode(errors="replace")
    if status == 127:
        return False, "age is not installed on the host (add pkgs.age to its packages)"
    if status != 0:
        lines = [
            ln.removeprefix("age: error: ")
            for ln in err.splitlines()
            if "report unexpected" not in ln
        ]
        return False, "; ".join(ln.strip() for ln in lines if ln.strip()) or f"exit {status}"
    return True, ""


def _check_host(host: Host, files: Mapping[str, bytes], timeout: float) -> list[RemoteResult]:
    import paramiko

    try:
        conn = _connect(host, timeout)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        reason = str(exc) or type(exc).__name__
        return [RemoteResult(host.name, f, False, f"cannot connect: {reason}") for f in files]
    try:
        out = []
        for rel, data in files.items():
            try:
                ok, detail = _decrypt_remotely(conn, host, data, timeout)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                ok, detail = False, str(exc) or type(exc).__name__
            out.append(RemoteResult(host.name, rel, ok, detail))
        return out
    finally:
        conn.close()


def check_on_hosts(
    work: Mapping[str, tuple[Host, Mapping[str, bytes]]], timeout: float = REMOTE_TIMEOUT
) -> list[RemoteResult]:
    """work: host name -> (host, {file: ciphertext}); one SSH connection per host."""
    if not work:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(work))) as pool:
        batches = pool.map(lambda item: _check_host(item[0], item[1], timeout), work.values())
        return [r for batch in batches for r in batch]
