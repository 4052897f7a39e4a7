"""`hydradeploy reboot`: reboot hosts without taking the cluster down.

Per host: cordon, drain (bounded by --drain-timeout), reboot, wait for SSH and the boot
to finish, the deploy's join checks (checks.wait_healthy), uncordon. Servers one at a
time, then agents in waves that keep at least one GPU node of each vendor up
(`plan_waves`, pure). The first host that fails stops the run: it stays as it is (a
node that did not come back stays cordoned), hosts not yet started are not touched.

Interrupted (SIGINT, SIGTERM, SIGHUP; deploy/signals.py), the run stops starting hosts
but lets the hosts in flight finish: a host between cordon and uncordon, or already
rebooting, cannot be left half-way safely — stopping there would leave it cordoned or
unchecked. The record (deploy/record.py) is written on every exit path.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hydradeploy.deploy import checks, nix, record, signals
from hydradeploy.deploy.activate import switch_command
from hydradeploy.deploy.models import SYSTEM_PROFILE
from hydradeploy.deploy.progress import Progress
from hydradeploy.errors import UserError
from hydradeploy.inventory import Host, Inventory
from hydradeploy.transport import Connection, RemoteError
from hydradeploy.transport.pool import Pool

# kubectl drain flags (kubernetes staging/src/k8s.io/kubectl/pkg/cmd/drain/drain.go,
# `NewCmdDrain`: "ignore-daemonsets", "delete-emptydir-data"; stored copies found by the
# flag text, revision not pinned).
DRAIN_FLAGS = ("--ignore-daemonsets", "--delete-emptydir-data")
# What identifies one boot: the kernel's boot id (new at every real boot; random(4) of
# man-pages 6.03: "the latter was generated once") and PID 1's start time in clock ticks
# (proc(5) of man-pages 6.03, /proc/PID/stat "(22) starttime"; PID 1's comm has no space,
# so `cut -f22` finds it): in a container (the lab's systemd-nspawn machines) the kernel
# stays, PID 1 is started anew.
_BOOT_MARK = "cat /proc/sys/kernel/random/boot_id; cut -d' ' -f22 /proc/1/stat"


class RebootFailed(Exception):
    """One host's reboot failed; the message is the one line the user sees."""


def vendors(host: Host) -> set[str]:
    return {g.vendor for g in host.gpus}


def plan_waves(
    chosen: Sequence[Host], every: Sequence[Host], max_parallel: int, force: bool
) -> list[list[Host]]:
    """Servers one per wave (never two servers down), then agents in waves of at most
    `max_parallel`, inventory order, such that every GPU vendor of the inventory keeps
    at least one node up during each wave. A host whose own reboot would leave a vendor
    with no node up is a UserError unless `force` (then the capacity rule is off)."""
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")
    nodes_of: dict[str, set[str]] = {}
    for h in every:
        for v in vendors(h):
            nodes_of.setdefault(v, set()).add(h.name)

    def keeps_capacity(down: Sequence[Host]) -> bool:
        names = {h.name for h in down}
        return all(nodes - names for nodes in nodes_of.values())

    if not force:
        for h in chosen:
            if not keeps_capacity([h]):
                lost = sorted(v for v in vendors(h) if not nodes_of[v] - {h.name})
                raise UserError(
                    f"reboot {h.name}: it is the only {'/'.join(lost)} GPU node: the cluster "
                    "would have none up while it reboots (--force to reboot it anyway)"
                )
    waves: list[list[Host]] = [[h] for h in chosen if h.is_server]
    waves.sort(key=lambda w: w[0].cluster_init)  # the cluster-init server last
    todo = [h for h in chosen if not h.is_server]
    while todo:
        wave: list[Host] = []
        for h in list(todo):
            if len(wave) < max_parallel and (force or keeps_capacity([*wave, h])):
                wave.append(h)
                todo.remove(h)
        waves.append(wave)
    return waves


@dataclass
class HostResult:
    host: str
    role: str
    outcome: str = "waiting"  # ok, failed, skipped
    step: str = ""
    message: str = ""
    generation_before: int | None = None
    generation_after: int | None = None
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host, "role": self.role, "outcome": self.outcome, "step": self.step,
            "message": self.message, "generation_before": self.generation_before,
            "generation_after": self.generation_after, "seconds": round(self.seconds, 2),
            "steps": self.steps,
        }  # fmt: skip


@dataclass
class Options:
    max_parallel: int = 1
    force: bool = False
    drain_timeout: float = 120.0
    boot_timeout: float = 300.0
    check_timeout: float = 180.0
    #: `deploy --mode boot --reboot`: host -> the generation it ran before the deploy;
    #: when the new generation fails after the boot, the host boots back into this one
    rollback_to: dict[str, int] = field(default_factory=dict)


def _generation(conn: Connection) -> int | None:
    from hydradeploy.deploy import probe

    return probe.probe(conn).generation


class HostReboot:
    """One host: each method is one step; a failing step raises RebootFailed."""

    def __init__(self, run: Run, host: Host, res: HostResult) -> None:
        self.run, self.host, self.res = run, host, res
        self.name = host.name

    def _step(self, step: str, detail: str = "") -> None:
        self.res.step = step
        self.res.steps.append(step)
        self.run.progress.step(self.name, step, detail)

    def _kubectl(self, args: list[str], timeout: float, what: str) -> tuple[bool, str]:
        """`k3s kubectl ARGS` on a server other than this host when one answers (this
        host may be the server going down), else on any server."""
        conn = self.run.kube(avoid=self.host)
        if conn is None:
            return False, "no k3s server reachable to run kubectl"
        try:
            res = conn.run(["k3s", "kubectl", *args], timeout=timeout, what=f"kubectl {args[0]}")
        except RemoteError as exc:
            return False, str(exc)
        return res.ok, res.last_line()

    def cordon(self) -> None:
        self._step("cordon")
        ok, why = self._kubectl(["cordon", self.name], 30, "cordon")
        if not ok:
            raise RebootFailed(f"{self.name}: cordon failed: {why}")

    def drain(self) -> None:
        timeout = int(self.run.opts.drain_timeout)
        self._step("drain", f"--timeout={timeout}s")
        # kubectl drain retries evictions a PodDisruptionBudget refuses (HTTP 429) every
        # 5 s until --timeout, then fails with "global timeout reached" (kubernetes
        # staging/src/k8s.io/kubectl/pkg/drain/drain.go @014e1fb5, `evictPods`).
        ok, why = self._kubectl(
            ["drain", self.name, *DRAIN_FLAGS, f"--timeout={timeout}s"], timeout + 30, "drain"
        )
        if not ok:
            # leave the host as it was: schedulable again, not rebooted
            self._kubectl(["uncordon", self.name], 30, "uncordon")
            raise RebootFailed(
                f"{self.name}: drain did not finish within {timeout}s: a PodDisruptionBudget "
                f"or a pod that would not leave (kubectl: {why}); not rebooted, uncordoned"
            )

    def reboot(self) -> str:
        """Start the reboot from a transient timer (it outlives this SSH session), return
        the boot mark it leaves behind."""
        self._step("reboot")
        try:
            conn = self.run.pool.get(self.host)
            mark = conn.run(["sh", "-c", _BOOT_MARK], timeout=20, what="boot id").stdout
            if self.res.generation_before is None:  # a rollback reboots a second time
                self.res.generation_before = _generation(conn)
            # systemd-run --on-active: a transient timer unit, so the reboot is not tied
            # to this session (systemd-run(1)); a timer's AccuracySec defaults to 1min
            # (systemd.timer(5); systemd commit 9f5eb56a "make it default to 1min"): without a
            # smaller one the reboot may start up to a minute late.
            unit = f"hydradeploy-reboot-{int(time.time())}"
            argv = ["systemd-run", "--on-active=1", "--timer-property=AccuracySec=100ms",
                    "--unit", unit, "systemctl", "reboot"]  # fmt: skip
            conn.run(argv, timeout=20, check=True, what="systemd-run systemctl reboot")
        except RemoteError as exc:
            raise RebootFailed(f"{self.name}: reboot: {exc}") from None
        self.run.pool.drop(self.host)
        return mark

    def wait_boot(self, old_mark: str) -> float:
        """Wait for SSH with a new boot mark, then for the boot to finish
        (`systemctl is-system-running --wait`); returns the host's clock then."""
        self._step("wait-boot", "SSH, then systemctl is-system-running --wait")
        deadline = time.monotonic() + self.run.opts.boot_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            try:
                conn = self.run.pool.get(self.host)
                mark = conn.run(["sh", "-c", _BOOT_MARK], timeout=10, what="boot id").stdout
                if mark.strip() == old_mark.strip():
                    last = "still the old boot"
                    self.run.pool.drop(self.host)
                    time.sleep(1)
                    continue
                left = max(5, int(deadline - time.monotonic()))
                res = conn.run(["timeout", str(left), "systemctl", "is-system-running", "--wait"],
                               timeout=left + 10, what="systemctl is-system-running --wait")  # fmt: skip
                state = res.stdout.strip() or "unknown"
                if state not in ("running", "degraded"):
                    raise RebootFailed(f"{self.name}: the boot did not finish: system is {state}")
                now = conn.run(["date", "+%s"], timeout=10, what="date").stdout.strip()
                self.res.generation_after = _generation(conn)
                return float(now)
            except RemoteError as exc:
                last = str(exc)
                self.run.pool.drop(self.host)
                time.sleep(1)
        raise RebootFailed(
            f"{self.name}: did not come back within {self.run.opts.boot_timeout:.0f}s ({last})"
        )

    def verify(self, booted_at: float) -> None:
        self._step("checks")
        own = self.run.pool.get(self.host)
        source = checks.NodeSource(self.run.kube(avoid=None))
        results = checks.wait_healthy(
            self.host, self.run.inv, own, source, timeout=self.run.opts.check_timeout,
            fresh_since=booted_at,
            on_poll=lambda rs: self.run.progress.line(
                self.name, "; ".join(f"{r.name}: {r.detail}" for r in checks.failures(rs))),
        )  # fmt: skip
        bad = checks.failures(results)
        if bad:
            raise RebootFailed(
                f"{self.name}: node did not come back Ready after the reboot: "
                f"{bad[0].name}: {bad[0].detail} (left cordoned)"
            )

    def uncordon(self) -> None:
        self._step("uncordon")
        ok, why = self._kubectl(["uncordon", self.name], 30, "uncordon")
        if not ok:
            raise RebootFailed(f"{self.name}: uncordon failed: {why}")

    def boot_previous(self, old: int, why: str) -> None:
        """The new generation failed after the boot: make generation OLD the boot
        default again (profile + switch-to-configuration boot) and reboot into it."""
        new = self.res.generation_after
        why = why.removesuffix(" (left cordoned)")
        self._step("rollback", f"generation {old}, then reboot")
        try:
            conn = self.run.pool.get(self.host)
            conn.run(nix.switch_generation(old, SYSTEM_PROFILE), timeout=120, check=True,
                     what="nix-env --switch-generation")  # fmt: skip
            conn.run(switch_command(SYSTEM_PROFILE, "boot"), timeout=600, check=True,
                     what="switch-to-configuration boot")  # fmt: skip
        except RemoteError as exc:
            raise RebootFailed(f"{why}; rollback to generation {old} failed: {exc}") from None
        mark = self.reboot()
        booted_at = self.wait_boot(mark)
        gone = f"{why}; rolled back to generation {old} and booted into it"
        try:
            self.verify(booted_at)
        except RebootFailed as exc:
            raise RebootFailed(f"{gone}, but it is not healthy either: {exc}") from None
        self.uncordon()
        raise RebootFailed(f"{gone} (healthy, uncordoned; generation {new} stays listed)")

    def go(self) -> None:
        t0 = time.monotonic()
        try:
            self.cordon()
            self.drain()
            mark = self.reboot()
            booted_at = self.wait_boot(mark)
            try:
                self.verify(booted_at)
            except RebootFailed as exc:
                old = self.run.opts.rollback_to.get(self.name)
                if old is None or old == self.res.generation_after:
                    raise
                self.boot_previous(old, str(exc))
            self.uncordon()
            self.res.outcome, self.res.step = "ok", ""
            self.run.progress.step(self.name, "done")
        except RebootFailed as exc:
            self.res.outcome, self.res.message = "failed", str(exc)
            self.run.progress.note(self.name, str(exc))
        finally:
            self.res.seconds = time.monotonic() - t0


class Run:
    def __init__(
        self,
        inv: Inventory,
        opts: Options,
        progress: Progress,
        pool: Pool | None = None,
        stopping: Callable[[], str] = lambda: "",
    ) -> None:
        self.inv, self.opts, self.progress = inv, opts, progress
        self.pool = pool or Pool(inv)
        self._lock = threading.Lock()
        #: the name of the signal that interrupted the run ("" while none did)
        self.stopping = stopping

    def kube(self, avoid: Host | None) -> Connection | None:
        """A server's connection for kubectl: not `avoid` when another one answers."""
        servers = sorted(self.inv.servers, key=lambda h: not h.cluster_init)
        if avoid is not None:
            servers = [s for s in servers if s.name != avoid.name] + [
                s for s in servers if s.name == avoid.name
            ]
        for s in servers:
            try:
                return self.pool.get(s)
            except RemoteError:
                continue
        return None

    def go(self, waves: list[list[Host]]) -> list[HostResult]:
        results = {h.name: HostResult(h.name, h.role) for w in waves for h in w}
        with self.pool:
            for wave in waves:
                if self.stopping():
                    break
                with ThreadPoolExecutor(max_workers=len(wave)) as ex:
                    list(ex.map(lambda h: HostReboot(self, h, results[h.name]).go(), wave))
                if any(results[h.name].outcome != "ok" for h in wave):
                    break
        why = (
            f"not touched: interrupted by {self.stopping()}"
            if self.stopping()
            else "not touched: an earlier host failed"
        )
        for r in results.values():
            if r.outcome == "waiting":
                r.outcome, r.message = "skipped", why
        return list(results.values())


@dataclass
class RebootRun:
    results: list[HostResult]
    outcome: str  # ok | failed | interrupted
    #: the signal that interrupted the run, None when none did
    signum: int | None = None


def reboot(
    inv: Inventory, chosen: Sequence[Host], opts: Options, *, quiet: bool = False
) -> RebootRun:
    """Reboot CHOSEN in waves; the record is written whatever happens."""
    waves = plan_waves(chosen, list(inv.hosts.values()), opts.max_parallel, opts.force)
    order = " | ".join(", ".join(h.name for h in w) for w in waves)
    run_id, started = record.new_run_id(), record.now_iso()
    # signals only set the flag (never raise): the hosts in flight must finish
    intr = signals.Interrupts(on_again=_say_finishing).__enter__()
    results: list[HostResult] = []
    try:
        with Progress([h.name for w in waves for h in w], quiet=quiet) as progress:
            progress.note("plan", f"waves: {order}")
            results = Run(inv, opts, progress, stopping=lambda: intr.name).go(waves)
    finally:
        intr.__exit__()
        outcome = (
            "interrupted"
            if intr.signum is not None
            else ("ok" if results and all(r.outcome == "ok" for r in results) else "failed")
        )
        rec = record.entry(run_id, "reboot", started, [], outcome, sys.argv[1:],
                           inventory=str(inv.path), cluster=inv.cluster.name)  # fmt: skip
        rec["hosts"] = [r.as_json() for r in results]
        record.append_local(rec)
    return RebootRun(results, outcome, intr.signum)


def _say_finishing(signum: int) -> None:
    signals.say(signum, ": stopping after the hosts being rebooted are back and "
                "uncordoned; no other host is started")  # fmt: skip
