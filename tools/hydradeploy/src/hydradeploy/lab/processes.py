"""The lab's processes: PID files, liveness, killing, reaping."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from hydradeploy.lab import network

KEEPER = Path(__file__).parent / "keeper.py"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine_leader(pid_file: Path) -> int | None:
    """PID 1 of a lab machine (the child of the systemd-nspawn whose PID the keeper
    wrote), or None while it is not up."""
    pid = read_pid(pid_file)
    if not pid:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def pid_runs(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def is_keeper(pid: int) -> bool:
    return pid_runs(pid, str(KEEPER).encode())


def kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def reap(pid: int) -> None:
    """Collect the exit status of a keeper this process started (no zombie left)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.02)


def kill_netns(ns: str) -> None:
    """SIGKILL every process in the namespace until none is left."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [p for p in network.netns_pids(ns) if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            kill(pid, signal.SIGKILL)
        for pid in pids:
            wait_gone(pid, 2)
