"""The stability window: after the join checks pass, k3s must keep running unrestarted
and the node stay Ready for a few more seconds before the host's guard is confirmed.
A k3s that passes the checks and crashes 10 s later is then rolled back, not "deployed".

k3s counts as restarted when systemd's restart counter or its main pid changed: the
service property `NRestarts` (`readonly u NRestarts` in org.freedesktop.systemd1(5),
systemd 252 as shipped by Debian 12) and `MainPID` (`readonly u MainPID`, same page),
read with `systemctl show -p NAME --value` (systemctl(1) of systemd 252: `--value` prints
only the value). A host whose systemctl lacks `show` (the lab's shim) gives the main pid
through `systemctl status`: "   Main PID: N" (upstream: systemd src/systemctl/
systemctl-show.c @0086ef19cb9f, `print_status_info`: `printf("   Main PID: "PID_FMT, …)`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hydradeploy.deploy import checks
from hydradeploy.deploy.models import CheckResult
from hydradeploy.inventory import Host, Inventory
from hydradeploy.transport import Connection as Remote
from hydradeploy.transport import RemoteError, script

DEFAULT_WINDOW_S = 10.0
POLL_S = 1.0

_K3S_IDENTITY = r"""
n=$(systemctl show -p NRestarts --value k3s 2>/dev/null)
p=$(systemctl show -p MainPID --value k3s 2>/dev/null)
case $p in ''|*[!0-9]*)
  p=$(systemctl status k3s 2>/dev/null | sed -n 's/.*Main PID: *\([0-9][0-9]*\).*/\1/p' | head -n 1) ;;
esac
case $n in ''|*[!0-9]*) n=- ;; esac
echo "restarts=$n pid=${p:-none}"
"""


def k3s_identity(own: Remote) -> str:
    """`restarts=N pid=P` of k3s.service now; changes whenever k3s restarted."""
    res = own.run(script(_K3S_IDENTITY), timeout=15, check=True, what="read k3s restarts")
    return res.stdout.strip()


def hold(
    host: Host,
    inv: Inventory,
    own: Remote,
    kube: checks.NodeSource,
    window: float,
    *,
    on_poll: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CheckResult]:
    """Poll for `window` seconds; [] when k3s stayed up, unrestarted, and every check
    kept passing, else the failures that broke the window (named `stability` for the
    restart, the usual names otherwise)."""
    if window <= 0:
        return []
    try:
        first = k3s_identity(own)
    except RemoteError as exc:
        return [
            CheckResult("stability", False, f"host unreachable during the stability window ({exc})")
        ]
    end = clock() + window
    while True:
        try:
            now = k3s_identity(own)
        except RemoteError as exc:
            return [
                CheckResult(
                    "stability", False, f"host unreachable during the stability window ({exc})"
                )
            ]
        if now != first:
            return [
                CheckResult(
                    "stability",
                    False,
                    f"k3s restarted within {window:g} s after passing the checks ({first} → {now})",
                )
            ]
        bad = checks.failures(checks.evaluate(host, inv, checks.collect(host, own, kube)))
        if bad:
            return [
                CheckResult(r.name, False, f"{r.detail} (within the {window:g} s stability window)")
                for r in bad
            ]
        left = end - clock()
        if on_poll is not None:
            on_poll(f"stable, {max(left, 0):.0f} s to go ({now})")
        if left <= 0:
            return []
        sleep(min(POLL_S, left))
