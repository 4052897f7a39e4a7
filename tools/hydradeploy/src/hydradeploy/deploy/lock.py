"""A deploy lock on each target host: an atomic `mkdir` under the host's state dir,
holding who took it (user@machine, pid, time, run id). A second deploy to the host
fails with a message naming the holder. Only the run that took a lock releases it (the
host's watchdog also releases it after rolling back a run that vanished)."""

from __future__ import annotations

import getpass
import os
import re
import socket
import time

from hydradeploy.transport import Connection as Remote
from hydradeploy.transport import script

STATE_DIR = "/var/lib/hydradeploy"
LOCK_DIR = f"{STATE_DIR}/lock"
RUNS_DIR = f"{STATE_DIR}/runs"  # one directory per guard (watchdog.py)

_ACQUIRE = r"""
lock=$1 holder=$2 run=$3 runs=$4
mkdir -p "${lock%/*}" || exit 3
if mkdir "$lock" 2>/dev/null; then
  printf '%s\n' "$holder" > "$lock/holder"
  printf '%s\n' "$run" > "$lock/run"
  echo acquired
  # guards that finished more than 30 days ago leave nothing worth keeping
  find "$runs" -mindepth 2 -maxdepth 2 -name done -mtime +30 2>/dev/null |
    while read -r f; do rm -rf "${f%/done}"; done
  # a watchdog of an earlier run that is still deciding (its run was interrupted)
  for pidfile in "$runs"/*/pid; do
    [ -e "$pidfile" ] || continue
    dir=${pidfile%/pid}
    if [ ! -e "$dir/done" ] && [ ! -L "$dir/decision" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "guard ${dir##*/}"
    fi
  done
else
  echo held
  cat "$lock/holder" 2>/dev/null || echo "(holder not recorded yet)"
  cat "$lock/run" 2>/dev/null || echo "?"
fi
"""

_RELEASE = r"""
lock=$1 run=$2
if [ "$(cat "$lock/run" 2>/dev/null)" = "$run" ]; then rm -rf "$lock"; fi
"""

_HOLDER_RE = re.compile(r"^\S+@(?P<machine>\S+) pid (?P<pid>\d+) ")


class LockHeld(Exception):
    pass


def holder_text(run_id: str) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return (
        f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} since {stamp} (run {run_id})"
    )


def stale_holder(holder: str) -> bool:
    """The holder is a hydradeploy process on this machine that no longer runs (killed,
    or interrupted while a host's watchdog was still armed)."""
    m = _HOLDER_RE.match(holder)
    if m is None or m.group("machine") != socket.gethostname():
        return False
    pid = int(m.group("pid"))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(remote: Remote, run_id: str, lock_dir: str = LOCK_DIR, runs_dir: str = RUNS_DIR) -> str:
    """Take the host's deploy lock; returns a note when a stale lock was taken over."""
    note = ""
    for _attempt in range(2):
        res = remote.run(
            script(_ACQUIRE, lock_dir, holder_text(run_id), run_id, runs_dir),
            timeout=15,
            check=True,
            what="take the deploy lock",
        )
        lines = res.stdout.splitlines()
        if lines and lines[0] == "acquired":
            guards = [ln.split(" ", 1)[1] for ln in lines[1:] if ln.startswith("guard ")]
            if guards:
                release(remote, run_id, lock_dir)
                raise LockHeld(
                    f"{remote.name}: the rollback watchdog of an interrupted run ({', '.join(guards)}) "
                    "is still armed on the host; it rolls back or is confirmed within its "
                    "--confirm-timeout, try again then"
                )
            return note
        holder = lines[1] if len(lines) > 1 else "unknown"
        if stale_holder(holder):
            remote.run(
                script(_RELEASE, lock_dir, lines[2] if len(lines) > 2 else ""),
                timeout=15,
                what="clear a stale lock",
            )
            note = f"took over a stale lock of {holder}"
            continue
        raise LockHeld(
            f"{remote.name}: another deploy holds the lock {lock_dir}: {holder}; "
            f"wait for it, or remove {lock_dir} on the host if that run is gone"
        )
    raise LockHeld(f"{remote.name}: could not take the lock {lock_dir}")


def release(remote: Remote, run_id: str, lock_dir: str = LOCK_DIR) -> None:
    remote.run(script(_RELEASE, lock_dir, run_id), timeout=15, what="release the deploy lock")
