"""One SSH connection to one host, reused for every command of a run.

`connect(host)` validates the endpoint and jump host (`target`), loads the keys the
policy trusts (`hostkeys`), and opens the session through the jump host when there is
one. A refused or failed handshake closes what it opened (no transport thread or socket
is left behind). paramiko's own log lines never reach stderr unless `-v` asked for them
(`set_verbose`): failures are one line per host, with the cause.

Every command is an argv joined with `shlex.join` (or a constant `sh -c` script whose
values arrive as positional arguments), runs with a timeout, and gets `sudo -n --` in
front only when the inventory asks for sudo and the user is not root.
"""

from __future__ import annotations

import contextlib
import logging
import select
import shlex
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from hydradeploy.inventory import Host
from hydradeploy.transport import hostkeys, target
from hydradeploy.transport.errors import ConnectionLost, RemoteError, RemoteTimeout, Unreachable
from hydradeploy.transport.result import Result

if TYPE_CHECKING:
    import paramiko

CONNECT_TIMEOUT = 8.0
KEEPALIVE_S = 5

_count_lock = threading.Lock()
#: SSH connections opened per host name in this process (benchmarks and reports read it).
CONNECTIONS: Counter[str] = Counter()

_log = logging.getLogger("paramiko")
_log.addHandler(logging.NullHandler())
_log.propagate = False  # never Python's last-resort stderr handler


def set_verbose(verbose: bool) -> None:
    """Show paramiko's own messages (handshake errors, tracebacks) on stderr."""
    for h in list(_log.handlers):
        if not isinstance(h, logging.NullHandler):
            _log.removeHandler(h)
    if verbose:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("ssh: %(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.INFO)


def sudo_prefix(host: Host) -> list[str]:
    """`sudo -n --` when the inventory asks for sudo and the user is not root already."""
    return ["sudo", "-n", "--"] if host.ssh.sudo and host.ssh.user != "root" else []


def command_line(host: Host, argv: Sequence[str]) -> str:
    return shlex.join([*sudo_prefix(host), *argv])


def _reason(exc: BaseException) -> str:
    # paramiko's NoValidConnectionsError keeps the per-address socket errors in `errors`
    inner = list(getattr(exc, "errors", {}).values())
    if inner:
        exc = inner[0]
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class _UnknownHostKey(Exception):
    """Raised by our missing-host-key policy: a type to catch, not a message to match."""


def _refuse_unknown_keys() -> paramiko.MissingHostKeyPolicy:
    """paramiko's RejectPolicy, raising our own type (paramiko calls the policy only
    when no key is known for the host and lets its exception through: paramiko 5.1.0
    client.py `SSHClient.connect`)."""
    import paramiko

    class Refuse(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]  # untyped base
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            raise _UnknownHostKey(hostname)

    return Refuse()


def _open_client(
    host: Host,
    where: target.Endpoint,
    keys: paramiko.HostKeys,
    timeout: float,
    sock: Any = None,
) -> paramiko.SSHClient:
    """An authenticated client to `where`, or Unreachable with the client closed."""
    import paramiko

    client = paramiko.SSHClient()
    for name in keys:
        for kind, key in keys[name].items():
            client.get_host_keys().add(name, kind, key)
    client.set_missing_host_key_policy(_refuse_unknown_keys())
    key = host.ssh.key
    try:
        client.connect(
            where.address,
            port=where.port,
            username=where.user,
            key_filename=str(key) if key is not None else None,
            look_for_keys=key is None,
            allow_agent=key is None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            sock=sock,
        )
    except (paramiko.BadHostKeyException, _UnknownHostKey) as exc:
        client.close()
        raise hostkeys.refusal(host, where, exc) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise Unreachable(f"{host.name}: {where}: authentication failed: {_reason(exc)}") from None
    except paramiko.SSHException as exc:
        client.close()
        raise Unreachable(f"{host.name}: cannot connect to {where}: {_reason(exc)}") from None
    except (OSError, EOFError) as exc:
        client.close()
        raise Unreachable(f"{host.name}: cannot connect to {where}: {_reason(exc)}") from None
    except BaseException:
        client.close()
        raise
    return client


class Connection:
    """One host over SSH; `run()` reuses the session. `connect(host)` opens one;
    `Connection(host)` is opened by `open()` or `with`."""

    def __init__(
        self,
        host: Host,
        client: Any = None,
        via: Any = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.host = host
        self._client = client
        self._via = via  # the jump host's client, closed with this one
        self._timeout = connect_timeout

    def open(self) -> Connection:
        """Connect now (under the policy, as `connect`); no-op when open."""
        if self._client is None:
            fresh = connect(self.host, timeout=self._timeout)
            self._client, self._via = fresh._client, fresh._via
        return self

    @property
    def name(self) -> str:
        return self.host.name

    def close(self) -> None:
        for c in (self._client, self._via):
            if c is not None:
                with contextlib.suppress(Exception):
                    c.close()
        self._client = self._via = None

    def __enter__(self) -> Connection:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        t = self._client.get_transport() if self._client is not None else None
        return bool(t is not None and t.is_active())

    def command_line(self, argv: Sequence[str]) -> str:
        return command_line(self.host, argv)

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
        if self._client is None or not self.alive:
            raise ConnectionLost(f"{self.name}: not connected")
        label = what or argv[0]
        cmd = self.command_line(argv)
        deadline = time.monotonic() + timeout
        try:
            chan = self._client.get_transport().open_session(timeout=min(timeout, 10))
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


def _tunnel(host: Host, via: Any, where: target.Endpoint, timeout: float) -> Any:
    """A direct-tcpip channel through the jump host's session to `where`."""
    try:
        return via.get_transport().open_channel(
            "direct-tcpip", (where.address, where.port), ("127.0.0.1", 0), timeout=timeout
        )
    except Exception as exc:
        via.close()
        raise Unreachable(
            f"{host.name}: jump host cannot reach {where.address}:{where.port}: {_reason(exc)}"
        ) from None


def connect(host: Host, *, timeout: float = CONNECT_TIMEOUT) -> Connection:
    """Open the SSH connection to `host` under the host-key policy. Raises BadTarget
    (bad settings, exit 2) or Unreachable (one line naming the host and the cause)."""
    where = target.endpoint(host)
    hop = target.jump(host)
    keys = hostkeys.trusted(host, where, hop)
    with _count_lock:
        CONNECTIONS[host.name] += 1
    via = None
    sock = None
    if hop is not None:
        via = _open_client(host, hop, keys, timeout)
        sock = _tunnel(host, via, where, timeout)
    try:
        client = _open_client(host, where, keys, timeout, sock)
    except BaseException:
        if via is not None:
            via.close()
        raise
    client.get_transport().set_keepalive(KEEPALIVE_S)
    return Connection(host, client, via)


def presented_key(host: Host, *, timeout: float = CONNECT_TIMEOUT) -> tuple[str, bytes]:
    """Run only the key exchange with `host` (ed25519 offered only) and return the key it
    proved to hold, (type, blob). Nothing is trusted here: the caller compares it with
    what it knows, or shows its fingerprint. A jump host is reached under the policy."""
    import paramiko

    where = target.endpoint(host)
    hop = target.jump(host)
    via = None
    if hop is not None:
        via = _open_client(host, hop, hostkeys.trusted(host, where, hop), timeout)
        sock: Any = _tunnel(host, via, where, timeout)
    else:
        try:
            sock = socket.create_connection((where.address, where.port), timeout=timeout)
        except OSError as exc:
            raise Unreachable(f"{host.name}: cannot connect to {where}: {_reason(exc)}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.get_security_options().key_types = ["ssh-ed25519"]
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return key.get_name(), key.asbytes()
    except (OSError, EOFError, paramiko.SSHException) as exc:
        reason = _reason(exc)
        # paramiko 5.1.0 transport.py _negotiate_keys raises IncompatiblePeer("Incompatible
        # ssh peer (no acceptable host key)"); its other IncompatiblePeer cases (kex,
        # ciphers, macs) keep paramiko's own words
        if "(no acceptable host key)" in reason:
            reason = "the host offers no ed25519 host key"
        raise Unreachable(f"{host.name}: {where.address}:{where.port}: {reason}") from None
    finally:
        transport.close()
        if via is not None:
            via.close()
