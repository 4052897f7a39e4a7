"""A deploy lock on each target host: an atomic `mkdir` under the host's state dir,
holding who took it (user@machine, pid, time, run id). A second deploy to the host
fails with a message naming the holder. Only the run that took a lock releases it (the
host's watchdog also releases it after rolling back a run that vanished)."""

from __future__ import annotations

import getpass
import os
import socket
import time

from hydradeploy.deploy.remote import Remote, script

STATE_DIR = "/var/lib/hydradeploy"
LOCK_DIR = f"{STATE_DIR}/lock"

_ACQUIRE = r"""
lock=$1 holder=$2 run=$3
mkdir -p "${lock%/*}" || exit 3
if mkdir "$lock" 2>/dev/null; then
  printf '%s\n' "$holder" > "$lock/holder"
  printf '%s\n' "$run" > "$lock/run"
  echo acquired
else
  echo held
  cat "$lock/holder" 2>/dev/null || echo "(holder not recorded yet)"
fi
"""

_RELEASE = r"""
lock=$1 run=$2
if [ "$(cat "$lock/run" 2>/dev/null)" = "$run" ]; then rm -rf "$lock"; fi
"""


class LockHeld(Exception):
    pass


def holder_text(run_id: str) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return (
        f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} since {stamp} (run {run_id})"
    )


def acquire(remote: Remote, run_id: str, lock_dir: str = LOCK_DIR) -> None:
    res = remote.run(
        script(_ACQUIRE, lock_dir, holder_text(run_id), run_id),
        timeout=15,
        check=True,
        what="take the deploy lock",
    )
    lines = res.stdout.splitlines()
    if not lines or lines[0] != "acquired":
        holder = lines[1] if len(lines) > 1 else "unknown"
        raise LockHeld(
            f"{remote.name}: another deploy holds the lock {lock_dir}: {holder}; "
            f"wait for it, or remove {lock_dir} on the host if that run is gone"
        )


def release(remote: Remote, run_id: str, lock_dir: str = LOCK_DIR) -> None:
    remote.run(script(_RELEASE, lock_dir, run_id), timeout=15, what="release the deploy lock")
