"""sw/bin/systemctl of a lab closure: a shim that answers for k3s.service only.

Lab hosts run no systemd; the deploy tool asks `systemctl is-active k3s` and
`systemctl is-system-running`, and may restart k3s. Exit codes follow systemctl.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import common

UNITS = ("k3s", "k3s.service")


def _closure() -> Path | None:
    try:
        return common.CURRENT_SYSTEM.resolve(strict=True)
    except OSError:
        return None


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("-")]
    quiet = "--quiet" in argv or "-q" in argv
    if not args:
        print("lab systemctl: use is-active|is-failed|is-system-running|start|stop|restart|status")
        return 0
    verb, units = args[0], args[1:]
    if verb == "is-system-running":
        state = "degraded" if common.k3s_state() == "failed" else "running"
        if not quiet:
            print(state)
        return 0 if state == "running" else 1
    if verb == "daemon-reload":
        return 0
    for unit in units:
        if unit not in UNITS:
            print(
                f"Unit {unit} could not be found (lab hosts only know k3s.service).",
                file=sys.stderr,
            )
            return 4
    if not units:
        print(f"Too few arguments for {verb}.", file=sys.stderr)
        return 1
    state = common.k3s_state()
    if verb == "is-active":
        if not quiet:
            print(state)
        return 0 if state == "active" else 3
    if verb == "is-failed":
        if not quiet:
            print(state)
        return 0 if state == "failed" else 1
    if verb == "status":
        entry = common.read_k3s_pid()
        print("● k3s.service - Lightweight Kubernetes (hydra lab simulation)")
        print(f"     Active: {state}")
        if entry:
            print(f"   Main PID: {entry[0]}")
            print(f"    Closure: {entry[1]}")
        return 0 if state == "active" else 3
    if verb in ("stop", "start", "restart"):
        closure = _closure()
        if verb in ("stop", "restart"):
            common.stop_k3s()
        if verb in ("start", "restart") and closure is not None:
            if verb == "start" and state == "active":
                return 0
            common.start_k3s(closure)
        return 0
    print(f"lab systemctl: unsupported verb {verb!r}", file=sys.stderr)
    return 1
