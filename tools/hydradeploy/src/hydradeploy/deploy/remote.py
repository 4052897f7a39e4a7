"""SSH to one host: one Fabric connection reused for every command.

Connection options come from the inventory (user, port, key, jump host, sudo). Host keys
are checked against the inventory's known_hosts file and `host_key`; an unknown key is
refused, never added. Every command is an argv joined with `shlex.join` (or a constant
`sh -c` script whose values arrive as positional arguments) and runs with a timeout.
"""

from __future__ import annotations

import base64
import contextlib
import select
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hydradeploy.inventory import Host

CONNECT_TIMEOUT = 8.0

_count_lock = threading.Lock()
#: SSH connections opened per host name in this process (benchmarks and reports read it).
CONNECTIONS: Counter[str] = Counter()


class RemoteError(Exception):
    """A remote command could not be run or failed; the message names host and command."""


class Unreachable(RemoteError):
    pass


class ConnectionLost(RemoteError):
    pass


class RemoteTimeout(RemoteError):
    pass


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def last_line(self) -> str:
        for text in (self.stderr, self.stdout):
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1].strip()
        return ""


def script(body: str, *args: str) -> list[str]:
    """argv running a constant shell script with values as "$1" "$2" …"""
    return ["sh", "-c", body, "hydradeploy", *args]


def _host_key_entry(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


class Remote:
    """One host over SSH. `open()` connects (counted); `run()` reuses the connection."""

    def __init__(self, host: Host, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.host = host
        self.connect_timeout = connect_timeout
        self._conn: Any = None

    @property
    def name(self) -> str:
        return self.host.name

    def _connection(self, address: str, user: str, port: int, jump: str | None) -> Any:
        """A Fabric connection (not yet open) with host keys checked; `jump` is the
        user@host[:port] to tunnel through (the jump host's own key is checked too)."""
        import paramiko
        from fabric import Config, Connection

        ssh = self.host.ssh
        kwargs: dict[str, Any] = {
            "look_for_keys": ssh.key is None,
            "allow_agent": ssh.key is None,
            "banner_timeout": self.connect_timeout,
            "auth_timeout": self.connect_timeout,
        }
        if ssh.key is not None:
            kwargs["key_filename"] = str(ssh.key)
        gateway = None
        if jump:
            juser, _, jrest = jump.rpartition("@")
            jaddr, _, jport = jrest.partition(":")
            gateway = self._connection(jaddr, juser or user, int(jport or 22), None)
        conn = Connection(
            address,
            user=user,
            port=port,
            config=Config(overrides={"load_ssh_configs": False}),
            connect_timeout=int(self.connect_timeout),
            connect_kwargs=kwargs,
            gateway=gateway,
        )
        client = conn.client
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        if ssh.known_hosts is not None:
            try:
                client.load_host_keys(str(ssh.known_hosts))
            except FileNotFoundError:
                raise Unreachable(
                    f"{self.name}: known_hosts file {ssh.known_hosts} not found"
                ) from None
        else:
            client.load_system_host_keys()
        if ssh.host_key and address == self.host.address:
            kind, _, rest = ssh.host_key.partition(" ")
            blob = rest.split()[0] if rest.split() else ""
            try:
                key = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
            except Exception as exc:
                raise Unreachable(
                    f"{self.name}: inventory host_key is not a public key: {exc}"
                ) from None
            client.get_host_keys().add(_host_key_entry(address, port), kind, key)
        return conn

    def open(self) -> Remote:
        import paramiko

        ssh = self.host.ssh
        conn = self._connection(self.host.address, ssh.user, ssh.port, ssh.jump)
        with _count_lock:
            CONNECTIONS[self.name] += 1
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            raise Unreachable(
                f"{self.name}: host key mismatch for {self.host.address}: {exc}"
            ) from None
        except paramiko.SSHException as exc:
            msg = str(exc)
            if "not found in known_hosts" in msg:
                msg = f"host key of {self.host.address} is not in known_hosts (refused, not added)"
            raise Unreachable(f"{self.name}: {msg}") from None
        except (OSError, EOFError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise Unreachable(
                f"{self.name}: cannot connect to {ssh.user}@{self.host.address}:{ssh.port}: {reason}"
            ) from None
        conn.transport.set_keepalive(5)
        self._conn = conn
        return self

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Remote:
        return self.open() if self._conn is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        t = self._conn.transport if self._conn is not None else None
        return bool(t is not None and t.is_active())

    def command_line(self, argv: Sequence[str]) -> str:
        line = shlex.join(argv)
        if self.host.ssh.sudo and self.host.ssh.user != "root":
            line = "sudo -n -- " + line
        return line

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        stdin: bytes | Iterable[bytes] | None = None,
        on_line: Callable[[str], None] | None = None,
        check: bool = False,
        what: str | None = None,
    ) -> Result:
        """Run argv on the host; raise RemoteTimeout/ConnectionLost, or RemoteError when
        `check` and the exit status is not 0."""
        if self._conn is None or not self.alive:
            raise ConnectionLost(f"{self.name}: not connected")
        label = what or argv[0]
        cmd = self.command_line(argv)
        deadline = time.monotonic() + timeout
        try:
            chan = self._conn.transport.open_session(timeout=min(timeout, 10))
            chan.exec_command(cmd)
        except Exception as exc:
            raise ConnectionLost(f"{self.name}: {label}: connection lost ({exc})") from None
        pump: threading.Thread | None = None
        pump_error: list[BaseException] = []
        if stdin is None:
            chan.shutdown_write()
        elif isinstance(stdin, bytes):
            chan.sendall(stdin)
            chan.shutdown_write()
        else:
            chunks = stdin

            def feed() -> None:
                try:
                    for chunk in chunks:
                        chan.sendall(chunk)
                    chan.shutdown_write()
                except BaseException as exc:  # reported after the command ends
                    pump_error.append(exc)

            pump = threading.Thread(target=feed, daemon=True)
            pump.start()
        out, err = bytearray(), bytearray()
        partial = bytearray()
        try:
            while True:
                got = False
                while chan.recv_ready():
                    data = chan.recv(65536)
                    out += data
                    partial += data
                    got = True
                while chan.recv_stderr_ready():
                    data = chan.recv_stderr(65536)
                    err += data
                    partial += data
                    got = True
                if on_line is not None and b"\n" in partial:
                    lines = partial.split(b"\n")
                    partial = lines.pop()
                    for ln in lines:
                        if ln.strip():
                            on_line(ln.decode(errors="replace").rstrip())
                if (
                    chan.exit_status_ready()
                    and not chan.recv_ready()
                    and not chan.recv_stderr_ready()
                ):
                    break
                if not self.alive:
                    raise ConnectionLost(f"{self.name}: {label}: connection lost")
                if time.monotonic() > deadline:
                    raise RemoteTimeout(f"{self.name}: {label}: no answer within {timeout:g} s")
                if not got:
                    select.select([chan], [], [], 0.05)
            rc = chan.recv_exit_status()
        finally:
            chan.close()
        if pump is not None:
            pump.join(timeout=1)
        if pump_error:
            raise RemoteError(f"{self.name}: {label}: sending input failed: {pump_error[0]}")
        res = Result(rc, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and rc != 0:
            said = res.last_line() or f"exit status {rc}"
            raise RemoteError(f"{self.name}: {label} failed: {said}")
        return res
