"""Getting the new closure onto a host.

Prebuilt (`--closure HOST=PATH`) or `--build-on local`: the closure is in the local
store. Over the host's own connection the engine asks which of its paths the host
lacks and refuses when they would not fit in its free store space; then `nix copy
--to ssh://…` (nix.py `copy_to` says why not ssh-ng) moves them over OpenSSH
(transport/openssh.py: the same host-key policy, jump host and sudo as every other
connection), by default letting the host
fetch what its own binary caches have first (`--substitute-on-destination`).
`--build-on target` archives the flake to the host (`nix flake archive --to ssh://…`)
and builds there.

Ctrl-C leaves nothing half-registered on the host: Nix registers a path only after
all of its NAR arrived and its hash matched (NixOS/nix 2.8.0
src/libstore/local-store.cc, `LocalStore::addToStore(const ValidPathInfo &, Source &…)`:
`restorePath`, the `narHash` check, then `registerValidPath(info)`; a partial path is
not valid and is deleted by the next `addToStore` of it, `deletePath(realPath)`, or by
the GC), and sends references before referrers (store-api.cc `copyPaths`:
`topoSortPaths`, reversed), so the valid paths are always closed under references.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hydradeploy.deploy import nix
from hydradeploy.inventory import Host
from hydradeploy.transport import Connection as Remote
from hydradeploy.transport import RemoteError, local, openssh

COPY_TIMEOUT = 3600.0
SPACE_MARGIN = 64 * 2**20  # left free after the copy (Nix database, logs, GC roots)
BUILD_TIMEOUT = 7200.0
STOP_GRACE = 10.0  # seconds nix copy gets to end after SIGINT before it is killed


class ClosureError(Exception):
    pass


@dataclass(frozen=True)
class CopyStats:
    paths: int  # in the closure
    sent: int  # paths the deployer sent
    bytes: int  # NAR bytes of the paths sent (what crossed the link, before ssh)
    substituted: int = 0  # paths the host fetched from its own caches
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "paths": self.paths,
            "sent": self.sent,
            "bytes": self.bytes,
            "substituted": self.substituted,
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        return (
            f"{self.sent} of {self.paths} paths sent ({self.bytes} bytes), "
            f"{self.substituted} substituted, {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class CopyProgress:
    """What a running copy has done: bytes written to ssh so far, paths started."""

    bytes: int
    paths_started: int
    paths_to_send: int | None  # known once nix says "copying N paths"
    seconds: float

    def __str__(self) -> str:
        rate = self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
        if self.paths_to_send is None:
            return "the host asks its own caches first"
        return (
            f"sent {self.bytes / 2**20:.1f} MiB at {rate:.0f} MB/s, "
            f"path {self.paths_started} of {self.paths_to_send}"
        )


def _local(argv: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        return local.run(argv, timeout=timeout, env=env, check=True).stdout
    except local.LocalError as exc:
        raise ClosureError(str(exc)) from None


def shell(argv: Sequence[str]) -> str:
    import shlex

    return shlex.join(argv)


def local_requisites(path: str) -> list[str]:
    if not os.path.exists(path):
        raise ClosureError(f"{path} is not in the local Nix store")
    return _local(nix.query_requisites(path), 120).split()


def remote_requisites(remote: Remote, path: str) -> list[str]:
    res = remote.run(nix.query_requisites(path), timeout=60, what="nix-store --query --requisites")
    return res.stdout.split() if res.ok else []


def missing_on(remote: Remote, paths: Sequence[str]) -> list[str]:
    res = remote.run(
        nix.print_invalid(),
        stdin=("\n".join(paths) + "\n").encode(),
        timeout=60,
        check=True,
        what="nix-store --check-validity",
    )
    lacking = set(res.stdout.split())
    return [p for p in paths if p in lacking]  # keep the references-first order


def fetchable_on(remote: Remote, paths: Sequence[str]) -> set[str]:
    """Which of `paths` (lacking there) the host's own substituters would fetch: the
    host's answer, with its nix.conf (substituters, trusted keys), not ours."""
    if not paths:
        return set()
    res = remote.run(
        nix.realise_dry_run(),
        stdin=("\n".join(paths) + "\n").encode(),
        timeout=120,
        what="nix-store --realise --dry-run",
    )
    return nix.fetched_paths(res.stdout + "\n" + res.stderr) & set(paths)


def nar_sizes(paths: Sequence[str]) -> dict[str, int]:
    """NAR bytes of each path (`nix-store --query --size`, one line per path, in order)."""
    if not paths:
        return {}
    sizes = [int(x) for x in _local(nix.query_size(paths), 120).split()]
    return dict(zip(paths, sizes, strict=True))


def nar_size(paths: Sequence[str]) -> int:
    """Bytes the paths take unpacked (`nix-store --query --size`)."""
    return sum(nar_sizes(paths).values())


def _written(pid: int) -> int | None:
    """Bytes process `pid` has written so far (proc(5) of Linux man-pages 6.03, /proc/PID/io
    "wchar: characters written"): nix copy
    writes the NARs into its ssh pipe, so this is the live progress of the send."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# one line is enough when ssh itself says what went wrong (host key, auth, network).
# upstream: openssh-portable @V_9_2_P1 (Debian 12's 9.2p1; the same in V_10_5_P1):
# sshconnect.c "No %s host key is known for %.200s and you have requested strict
# checking." (%s = sshkey_type(): "ED25519", ssh-ed25519.c shortname), "ssh: connect to
# host %s port %s: %s" (strerror: "Connection refused", "Connection timed out", "No route
# to host" as Debian 12's glibc 2.36 words them), sshconnect2.c "%s@%s: Permission denied
# (%s).", ssh.c "%s: Could not resolve hostname %.100s: %s". "sudo:" is sudo's own
# prefix (not verified: no sudo source was read).
_SSH_FAILURES = (
    "No ED25519 host key is known",
    "Permission denied",
    "Connection refused",
    "Connection timed out",
    "Could not resolve hostname",
    "No route to host",
    "sudo:",
)


class _NixCopyLog:
    """Reads `nix copy --log-format internal-json` from its stderr."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.to_send: int | None = None
        self.errors: list[str] = []
        self.ssh_said: str = ""
        self.key_changed = False

    def feed(self, raw: str) -> None:
        line = raw.rstrip("\n")
        if not line.startswith("@nix "):
            if (  # openssh-portable V_9_2_P1 sshconnect.c / sshconnect2.c, same texts
                "REMOTE HOST IDENTIFICATION HAS CHANGED" in line
                or "Host key verification failed" in line
            ):
                self.key_changed = True
            elif any(m in line for m in _SSH_FAILURES) and not self.ssh_said:
                self.ssh_said = line.strip()
            elif line.strip():
                self.errors.append(line.strip())
            return
        # upstream: NixOS/nix @2.8.0 src/libutil/logging.cc (JSONLogger: "@nix " + JSON),
        # src/libutil/logging.hh (actCopyPath = 100, actCopyPaths = 103; 2.35.2 the same),
        # src/libutil/error.hh (lvlError = 0), src/libstore/store-api.cc `copyPaths`
        # (actCopyPaths text "copying %d paths").
        try:
            ev = json.loads(line[5:])
        except ValueError:
            return
        if ev.get("action") == "start" and ev.get("type") == 100:  # actCopyPath
            fields = ev.get("fields") or []
            if fields:
                self.sent.append(str(fields[0]))
        elif ev.get("action") == "start" and ev.get("type") == 103:  # actCopyPaths
            text = str(ev.get("text", ""))  # "copying N paths"
            parts = text.split()
            if len(parts) == 3 and parts[1].isdigit():
                self.to_send = int(parts[1])
        elif ev.get("action") == "msg" and ev.get("level", 9) == 0:  # lvlError
            self.errors.append(str(ev.get("msg", "")).strip())

    def failure(self) -> str:
        import re

        if self.key_changed:
            return "host key verification failed: the host presented a key the policy does not trust (inventory host_key / known_hosts)"
        if self.ssh_said:
            return self.ssh_said
        msg = next((e for e in reversed(self.errors) if e), "")
        msg = re.sub(r"\x1b\[[0-9;]*m", "", msg)  # Nix colours its messages
        return msg.splitlines()[0] if msg else ""


def nix_copy(
    host: Host,
    path: str,
    *,
    substitute: bool,
    compress: bool = False,
    on_progress: Callable[[CopyProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[str]:
    """`nix copy` of `path`'s closure to `host` over OpenSSH; returns the paths it sent
    (in order). A cancel sends SIGINT (Nix stops between reads, as on Ctrl-C) and then
    waits; the host keeps only complete, registered paths."""
    with openssh.nix_sshopts(host, compress=compress) as sshopts:
        uri = openssh.store_uri(host)
        argv = nix.copy_to(uri, path, substitute=substitute)
        try:
            proc = local.start_reading_stderr(argv, {**os.environ, "NIX_SSHOPTS": sshopts})
        except local.LocalError as exc:
            raise ClosureError(str(exc)) from None
        openssh.count_connection(host)
        log = _NixCopyLog()
        assert proc.stderr is not None
        stderr = proc.stderr

        def read() -> None:
            for ln in stderr:
                log.feed(ln)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        t0 = time.monotonic()
        base = _written(proc.pid) or 0
        stopped = False
        try:
            while proc.poll() is None:
                if not stopped and cancelled is not None and cancelled():
                    proc.send_signal(signal.SIGINT)
                    stopped = True
                    try:
                        proc.wait(STOP_GRACE)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                    break
                if time.monotonic() - t0 > COPY_TIMEOUT:
                    proc.kill()
                    proc.wait()
                    raise ClosureError(
                        f"{host.name}: nix copy to {uri} took longer than {COPY_TIMEOUT:g} s"
                    )
                if on_progress is not None:
                    done = (_written(proc.pid) or base) - base
                    on_progress(CopyProgress(done, len(log.sent), log.to_send,
                                             time.monotonic() - t0))  # fmt: skip
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.25)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(timeout=5)
        if stopped:
            raise ClosureError(
                f"{host.name}: nix copy to {uri} interrupted; the host keeps only complete paths"
            )
        if proc.returncode != 0:
            said = log.failure() or f"exit status {proc.returncode}"
            raise ClosureError(f"{host.name}: nix copy to {uri} failed: {said}")
        return log.sent


def copy_closure(
    remote: Remote,
    path: str,
    *,
    free_kb: int | None = None,
    substitute: bool = True,
    compress: bool = False,
    on_line: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    copier: Callable[..., list[str]] = nix_copy,
) -> CopyStats:
    """Get `path`'s closure onto the host: ask which paths it lacks (over `remote`),
    refuse when they would not fit in its free store space, then `nix copy` them.

    Substituted vs sent, and why it is true: `lacking` is what the host missed just
    before; `nix copy` names each path it sends (one actCopyPath activity per path,
    see nix.copy_to), and it exits 0 only when every path of the closure is valid on
    the host: it first asks the host which are valid (after substituting), then each
    path it sends must be acknowledged (NixOS/nix 2.8.0 src/libstore/legacy-ssh-store.cc,
    `addToStore`: `if (readInt(conn->from) != 1) throw Error("failed to add path …")`). A
    lacking path that is valid afterwards and was not sent was fetched by the host
    itself from its substituters — nothing else writes its store meanwhile (the
    deploy holds the host's lock)."""
    t0 = time.monotonic()
    paths = local_requisites(path)
    lacking = missing_on(remote, paths)
    if not lacking:
        return CopyStats(len(paths), 0, 0, 0, time.monotonic() - t0)
    sizes = nar_sizes(lacking)
    need = sum(sizes.values())
    if free_kb is not None and need + SPACE_MARGIN > free_kb * 1024:
        raise ClosureError(
            f"{remote.name}: the closure needs {need // 2**20 + 1} MiB (+{SPACE_MARGIN // 2**20} MiB margin), "
            f"/nix/store on the host has {free_kb // 1024} MiB free"
        )
    if on_line:
        how = "substituting on the host, then sending the rest" if substitute else "sending"
        on_line(
            f"{len(lacking)} of {len(paths)} store paths missing ({need / 2**20:.1f} MiB): {how}"
        )

    def progress(p: CopyProgress) -> None:
        if on_line:
            on_line(str(p))

    sent_list = copier(
        remote.host, path, substitute=substitute, compress=compress,
        on_progress=progress, cancelled=cancelled,
    )  # fmt: skip
    wanted = set(lacking)
    sent = [p for p in dict.fromkeys(sent_list) if p in wanted]
    sent_bytes = sum(sizes[p] for p in sent)
    return CopyStats(
        len(paths), len(sent), sent_bytes, len(lacking) - len(sent), time.monotonic() - t0
    )


def build_local(flake: str, host: str) -> str:
    """`nix build` of the host's toplevel here; returns the store path."""
    path = nix.built_path(_local(nix.build_toplevel(flake, host), BUILD_TIMEOUT))
    if path is None:
        raise ClosureError(f"nix build printed no store path for {host}")
    return path


def build_on_target(remote: Remote, flake: str, store_uri: str, nix_sshopts: str) -> str:
    """Archive the flake into the host's store, then build the toplevel there."""
    import json

    env = {"NIX_SSHOPTS": nix_sshopts}
    openssh.count_connection(remote.host)
    archived = json.loads(_local(nix.flake_archive_to(flake, store_uri), BUILD_TIMEOUT, env))
    source = archived["path"]
    try:
        res = remote.run(
            nix.remote_build_toplevel(source, remote.name),
            timeout=BUILD_TIMEOUT,
            check=True,
            what="nix build on the host",
        )
    except RemoteError as exc:
        raise ClosureError(str(exc)) from None
    path = nix.built_path(res.stdout)
    if path is None:
        raise ClosureError(f"{remote.name}: nix build printed no store path")
    return path
