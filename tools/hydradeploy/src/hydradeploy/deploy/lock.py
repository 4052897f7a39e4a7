"""A deploy lock on each target host: an atomic `mkdir` under the host's state dir,
holding who took it: a human line (`holder`), the run id, the deploying machine's
identity, its pid and a deadline. A second deploy to the host fails with a message
naming the holder and its run.

A lock is taken over only when its holder is provably gone:
* it was taken on this very machine (same machine identity, not just the same
  user@hostname) and its pid no longer runs, or
* its deadline passed and no guard of its run still runs on the host.
A new run is also refused while a guard of an earlier run still runs (armed, or rolling
back): it would race that guard for the system profile."""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from hydradeploy.transport import Connection as Remote
from hydradeploy.transport import script

STATE_DIR = "/var/lib/hydradeploy"
LOCK_DIR = f"{STATE_DIR}/lock"
RUNS_DIR = f"{STATE_DIR}/runs"  # one directory per guard (watchdog.py)
# A lock of another machine is never taken over before this much time after it was
# taken (longer than any deploy of one host: copy + activation + confirm + checks).
DEFAULT_LEASE_S = 2 * 3600

# machine-id(5), systemd 259 (man.archlinux.org/man/machine-id.5.en): "/etc/machine-id
# ... the unique machine ID of the local system", 32 lowercase hex characters, constant
# across boots; "should be considered confidential ... If a stable unique identifier
# that is tied to the machine is needed ... derive an application-specific ID" — so
# only an HMAC of it keyed per application leaves this machine. The D-Bus copy is the
# older location of the same ID.
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_APP_KEY = b"hydradeploy deploy lock v1"

# A guard counts as running when it has not written `done` and its pid is a guard.sh.
_GUARD_RUNNING = r"""
guard_running() {
  d=$1
  [ -e "$d/pid" ] && [ ! -e "$d/done" ] || return 1
  p=$(cat "$d/pid" 2>/dev/null)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  # after a reboot the pid may belong to something else
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q guard.sh
}
"""

_ACQUIRE = (
    _GUARD_RUNNING
    + r"""
lock=$1 holder=$2 run=$3 runs=$4 machine=$5 pid=$6 deadline=$7
mkdir -p "${lock%/*}" || exit 3
if mkdir "$lock" 2>/dev/null; then
  printf '%s\n' "$machine" > "$lock/machine"
  printf '%s\n' "$pid" > "$lock/pid"
  printf '%s\n' "$deadline" > "$lock/deadline"
  printf '%s\n' "$holder" > "$lock/holder"
  printf '%s\n' "$run" > "$lock/run"
  echo acquired
  # guards that finished more than 30 days ago leave nothing worth keeping
  find "$runs" -mindepth 2 -maxdepth 2 -name done -mtime +30 2>/dev/null |
    while read -r f; do rm -rf "${f%/done}"; done
  # a guard of an earlier run still armed or rolling back (its run was interrupted)
  for d in "$runs"/*/; do
    d=${d%/}
    [ -d "$d" ] || continue
    case ${d##*/} in "$run"-*) continue ;; esac
    if guard_running "$d"; then echo "guard ${d##*/}"; fi
  done
else
  echo held
  echo "holder=$(cat "$lock/holder" 2>/dev/null || echo '(holder not recorded yet)')"
  r=$(cat "$lock/run" 2>/dev/null)
  echo "run=$r"
  echo "machine=$(cat "$lock/machine" 2>/dev/null)"
  echo "pid=$(cat "$lock/pid" 2>/dev/null)"
  echo "deadline=$(cat "$lock/deadline" 2>/dev/null)"
  echo "now=$(date +%s)"
  g=no
  if [ -n "$r" ]; then
    for d in "$runs/$r"-*; do [ -d "$d" ] && guard_running "$d" && g=yes; done
  fi
  echo "guard=$g"
fi
"""
)

_RELEASE = r"""
lock=$1 run=$2
if [ "$(cat "$lock/run" 2>/dev/null)" = "$run" ]; then rm -rf "$lock"; fi
"""


class LockHeld(Exception):
    pass


def machine_identity(files: tuple[Path, ...] = MACHINE_ID_FILES) -> str:
    """This machine's identity for locks: an application-specific HMAC of its machine
    id; without one, the hostname (marked so it never equals a machine-id identity)."""
    for f in files:
        try:
            raw = f.read_text().strip()
        except OSError:
            continue
        if raw:
            return hmac.new(raw.encode(), _APP_KEY, hashlib.sha256).hexdigest()[:32]
    return f"hostname:{socket.gethostname()}"


def holder_text(run_id: str) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return (
        f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} since {stamp} (run {run_id})"
    )


@dataclass(frozen=True)
class Holder:
    """What a held lock says about its holder."""

    text: str
    run: str
    machine: str
    pid: int | None
    deadline: int | None
    now: int | None
    guard_running: bool

    @classmethod
    def parse(cls, lines: list[str]) -> Holder:
        kv = dict(ln.partition("=")[::2] for ln in lines)

        def num(key: str) -> int | None:
            v = kv.get(key, "").strip()
            return int(v) if v.isdigit() else None

        return cls(
            text=kv.get("holder", "unknown").strip(),
            run=kv.get("run", "").strip(),
            machine=kv.get("machine", "").strip(),
            pid=num("pid"),
            deadline=num("deadline"),
            now=num("now"),
            guard_running=kv.get("guard", "no").strip() == "yes",
        )


def _pid_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def gone_because(h: Holder, me: str) -> str:
    """Why the holder is provably gone ('' when it is not): a dead process of this
    machine, or a deadline that passed with no guard of its run still running."""
    if h.guard_running or not h.run:
        return ""
    if h.machine and h.machine == me and h.pid is not None and _pid_gone(h.pid):
        return f"its process {h.pid} on this machine is gone"
    if h.deadline is not None and h.now is not None and h.now > h.deadline:
        return "its deadline passed and its guard has finished"
    return ""


def acquire(
    remote: Remote,
    run_id: str,
    lock_dir: str = LOCK_DIR,
    runs_dir: str = RUNS_DIR,
    *,
    lease_s: int = DEFAULT_LEASE_S,
) -> str:
    """Take the host's deploy lock; returns a note when a stale lock was taken over."""
    note = ""
    me = machine_identity()
    for _attempt in range(2):
        res = remote.run(
            script(
                _ACQUIRE, lock_dir, holder_text(run_id), run_id, runs_dir, me,
                str(os.getpid()), str(int(time.time()) + lease_s),
            ),
            timeout=15,
            check=True,
            what="take the deploy lock",
        )  # fmt: skip
        lines = res.stdout.splitlines()
        if lines and lines[0] == "acquired":
            guards = [ln.split(" ", 1)[1] for ln in lines[1:] if ln.startswith("guard ")]
            if guards:
                release(remote, run_id, lock_dir)
                raise LockHeld(
                    f"{remote.name}: guard {', '.join(guards)} of an earlier run is still "
                    "active or rolling back on the host; try again when it has finished"
                )
            return note
        holder = Holder.parse(lines[1:])
        why = gone_because(holder, me)
        if why:
            remote.run(
                script(_RELEASE, lock_dir, holder.run),
                timeout=15,
                what="clear a stale lock",
            )
            note = f"took over a stale lock of {holder.text} ({why})"
            continue
        if holder.guard_running:
            raise LockHeld(
                f"{remote.name}: another deploy holds the lock {lock_dir}: {holder.text}; "
                f"its guard (run {holder.run}) is still active or rolling back"
            )
        raise LockHeld(
            f"{remote.name}: another deploy holds the lock {lock_dir}: {holder.text}; "
            f"wait for it, or remove {lock_dir} on the host if that run is gone"
        )
    raise LockHeld(f"{remote.name}: could not take the lock {lock_dir}")


def release(remote: Remote, run_id: str, lock_dir: str = LOCK_DIR) -> None:
    remote.run(script(_RELEASE, lock_dir, run_id), timeout=15, what="release the deploy lock")
