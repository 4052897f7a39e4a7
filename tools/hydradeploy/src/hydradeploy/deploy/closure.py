"""Getting the new closure onto a host.

Prebuilt (`--closure HOST=PATH`) or `--build-on local`: the closure is in the local
store; the engine asks the host which of its paths it lacks and streams exactly those
(`nix-store --export` here → `nix-store --import` there) over the host's existing SSH
connection, so a deploy needs no extra connection. `--build-on target` archives the
flake to the host (`nix flake archive --to ssh://…`) and builds there.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from hydradeploy.deploy import nix
from hydradeploy.transport import Connection as Remote
from hydradeploy.transport import RemoteError, local

COPY_TIMEOUT = 3600.0
SPACE_MARGIN = 64 * 2**20  # left free after the copy (Nix database, logs, GC roots)
BUILD_TIMEOUT = 7200.0


class ClosureError(Exception):
    pass


@dataclass(frozen=True)
class CopyStats:
    paths: int  # in the closure
    sent: int  # paths the host lacked
    bytes: int


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


def _export_stream(
    paths: Sequence[str], proc_holder: list[subprocess.Popen[bytes]]
) -> Iterator[bytes]:
    proc = local.stream(nix.export_paths(paths))
    proc_holder.append(proc)
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        yield chunk


def nar_size(paths: Sequence[str]) -> int:
    """Bytes the paths take unpacked (`nix-store --query --size`)."""
    if not paths:
        return 0
    return sum(int(x) for x in _local(nix.query_size(paths), 120).split())


def copy_closure(
    remote: Remote,
    path: str,
    *,
    free_kb: int | None = None,
    on_line: Callable[[str], None] | None = None,
) -> CopyStats:
    """Send the paths of `path`'s closure that the host lacks, over `remote`; refuse
    first when they would not fit in the host's free store space."""
    paths = local_requisites(path)
    lacking = missing_on(remote, paths)
    if not lacking:
        return CopyStats(len(paths), 0, 0)
    need = nar_size(lacking)
    if free_kb is not None and need + SPACE_MARGIN > free_kb * 1024:
        raise ClosureError(
            f"{remote.name}: the closure needs {need // 2**20 + 1} MiB (+{SPACE_MARGIN // 2**20} MiB margin), "
            f"/nix/store on the host has {free_kb // 1024} MiB free"
        )
    if on_line:
        on_line(f"sending {len(lacking)} of {len(paths)} store paths")
    holder: list[subprocess.Popen[bytes]] = []
    sent = 0

    def counted() -> Iterator[bytes]:
        nonlocal sent
        for chunk in _export_stream(lacking, holder):
            sent += len(chunk)
            yield chunk

    try:
        res = remote.run(
            nix.import_paths(), stdin=counted(), timeout=COPY_TIMEOUT, what="nix-store --import"
        )
    finally:
        for proc in holder:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    export_rc = holder[0].returncode if holder else 0
    if export_rc != 0:
        err = holder[0].stderr.read().decode(errors="replace").strip() if holder[0].stderr else ""
        raise ClosureError(f"nix-store --export failed here: {err or export_rc}")
    if not res.ok:
        raise ClosureError(f"nix-store --import on {remote.name} failed: {res.last_line()}")
    return CopyStats(len(paths), len(lacking), sent)


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
