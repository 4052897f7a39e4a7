"""Keeping the host's guard armed through the join checks.

The guard (watchdog.py) waits `--confirm-timeout` seconds after the activation for a
sign of life: a new SSH connection writes `reached`, holding how many more seconds the
tool needs for the checks and the stability window. The guard then extends its
deadline once by that much, and only `confirmed` — written after the checks and the
window passed — disarms it. A deployer that dies, is killed or loses the host at any
point after the activation therefore leaves a host that rolls itself back.
"""

from __future__ import annotations

import math

from hydradeploy.deploy.models import SYSTEM_PROFILE
from hydradeploy.transport import Connection as Remote
from hydradeploy.transport import RemoteError, script

# Slack for the round trips around the checks: a last probe, collecting facts over a
# slow link, and the decision itself; a poll that outlasts it ends in the guard deciding
# `watchdog`, which the tool reads and reports (never a silent confirm).
MARGIN_S = 15

# Write `reached` (the extension in seconds) unless a decision stands; print the
# decision that stands, or "reached".
_REACHED = r"""
state=$1 extra=$2
if [ ! -L "$state/decision" ]; then
  printf '%s\n' "$extra" > "$state/reached.tmp" && mv -f "$state/reached.tmp" "$state/reached"
fi
readlink "$state/decision" 2>/dev/null || echo reached
"""


def extension_s(check_timeout: float, stability_window: float) -> int:
    """How long the guard waits for `confirmed` once reached."""
    return math.ceil(check_timeout + stability_window) + MARGIN_S


def reached(remote: Remote, state_dir: str, extra_s: int) -> str:
    """Tell the guard a new connection works; "reached", or the decision that already
    stands ("watchdog" when the guard gave up first)."""
    res = remote.run(
        script(_REACHED, state_dir, str(extra_s)),
        timeout=15,
        check=True,
        what="tell the watchdog the host is reachable",
    )
    return res.stdout.strip() or "?"


# The profile step ran but the guard never started: point the profile back at the
# generation that runs, so the next boot does not start a closure nobody activated.
_RESTORE = r"""
state=$1 profile=$2 gen=$3
if [ -e "$state/pid" ]; then echo "the guard started; it decides"; exit 0; fi
case $gen in ''|0|*[!0-9]*) echo "no generation to go back to"; exit 0 ;; esac
if [ "$(readlink "$profile")" = "${profile##*/}-$gen-link" ]; then echo "profile unchanged"; exit 0; fi
nix-env -p "$profile" --switch-generation "$gen" >/dev/null 2>&1 && echo "profile set back to generation $gen"
"""


def restore_profile(
    remote: Remote, state_dir: str, generation: int | None, profile: str = SYSTEM_PROFILE
) -> str:
    """After a guard that failed to arm: what was done about the profile, for the report."""
    try:
        res = remote.run(
            script(_RESTORE, state_dir, profile, str(generation or 0)),
            timeout=60,
            what="set the profile back",
        )
    except RemoteError as exc:
        return f"could not set the profile back to generation {generation}: {exc}"
    return res.stdout.strip() or f"could not set the profile back to generation {generation}"
