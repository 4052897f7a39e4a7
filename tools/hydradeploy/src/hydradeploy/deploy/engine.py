"""The deploy flow. Per host (`HostDeploy`, one method per step): connect → preflight →
lock → closure → copy → [wait for an activation slot] → arm the guard (it sets the
profile, then activates) → confirm over a new connection → [after rejoin] → join checks
→ on failure roll back and re-check. Across hosts (`Engine`): stages from `order`
(servers one at a time, then the agents), [after the servers], a server gate before the
agents; the steps that change nothing run ahead (at most --max-parallel hosts), and at
most a stage's window of hosts is activated and not yet verified at once
(`order.Schedule`). After a failure no further host activates unless --keep-going;
Ctrl-C stops at safe points.

The two bracketed seams (`HostDeploy.after_rejoin`, `Engine.after_servers`): steps
other features add there (node label sync, prune) run at exactly that point.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from hydradeploy.deploy import (
    activate,
    armed,
    checks,
    closure,
    lock,
    nix,
    node_sync,
    order,
    preflight,
    probe,
    record,
    signals,
    stability,
    watchdog,
)
from hydradeploy.deploy.closure import CopyStats
from hydradeploy.deploy.models import (
    SYSTEM_PROFILE,
    CheckResult,
    Closure,
    Goal,
    HostReport,
    Outcome,
    StepResult,
)
from hydradeploy.deploy.progress import Progress
from hydradeploy.inventory import Host, Inventory
from hydradeploy.transport import (
    CONNECTIONS,
    Connection,
    ConnectionLost,
    HostKeyChanged,
    RemoteError,
    RemoteTimeout,
    Unreachable,
    openssh,
)
from hydradeploy.transport.pool import Pool


@dataclass
class Options:
    goal: Goal = Goal.SWITCH
    max_parallel: int = order.DEFAULT_MAX_PARALLEL
    confirm_timeout: int = 30
    check_timeout: float = 120.0
    activation_timeout: float = 600.0
    rollback: bool = True
    keep_going: bool = False
    build_on: str = "local"  # local | target, when no --closure is given
    flake: str = "."
    closures: dict[str, str] = field(default_factory=dict)
    stability_window: float = stability.DEFAULT_WINDOW_S
    substitute: bool = True  # the host fetches what its caches have (closure.copy_closure)
    compress: bool = False  # compress the copy's SSH stream (slow links)


def _ended_at(result: str | None) -> float | None:
    """The epoch in a guard's "rc who epoch" rollback result."""
    parts = (result or "").split()
    return float(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None


# Steps after which the host is still exactly as the deploy found it.
BEFORE_CHANGE = frozenset({"connect", "preflight", "lock", "closure", "copy", "wait"})


class HostFailed(Exception):
    """Ends one host's deploy; the report already says why."""


class NotStarted(Exception):
    """A prepared host that will not activate: another host failed (the reason)."""


# A host that waited this long for its slot is probed again before it activates.
REFRESH_AFTER_S = 2.0


class _Slot:
    """One host's place in the queue for an activation slot; `grant` (by the engine,
    under its lock) says go ('') or why not."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine, self.name = engine, name
        self.event = threading.Event()
        self.decision = ""
        engine._slots[name] = self

    def grant(self, why: str) -> None:
        if not self.event.is_set():
            self.decision = why
            self.event.set()

    def wait(self) -> str:
        return self.engine._await_slot(self.name)

    def release(self) -> None:
        self.engine._free_slot(self.name)


class Engine:
    def __init__(
        self,
        inv: Inventory,
        opts: Options,
        progress: Progress,
        run_id: str,
        pool: Pool | None = None,
    ) -> None:
        self.inv = inv
        self.opts = opts
        self.progress = progress
        self.run_id = run_id
        self.cancel = threading.Event()
        self.pool = pool or Pool(inv)
        self._kube_lock = threading.Lock()
        self._nodes: checks.NodeSource | None = None
        self.last_reports: list[HostReport] = []
        self._cond = threading.Condition()
        self._sched: order.Schedule | None = None
        self._slots: dict[str, _Slot] = {}
        #: run facts copied into each host's own record (id, user, machine, command …)
        self.record_meta: dict[str, object] = {}

    # ------------------------------------------------------------------ connections

    def connect(self, host: Host) -> Connection:
        return self.pool.get(host)

    def drop(self, host: Host) -> None:
        self.pool.drop(host)

    def kube_for(self, host: Host, own: Connection | None) -> checks.NodeSource:
        """Where to read node objects: a server's own API, else the shared server listing."""
        if host.is_server and own is not None:
            return checks.NodeSource(own)
        kube = self.pool.kube()
        with self._kube_lock:
            if self._nodes is None or self._nodes.kube is not kube:
                self._nodes = checks.NodeSource(kube)
            return self._nodes

    # ------------------------------------------------------------------ many hosts

    def run(
        self, hosts: Sequence[Host], closures: dict[str, Closure] | None = None
    ) -> list[HostReport]:
        """Deploy (or roll back, when `closures` name generations) `hosts`: stages from
        `order`, each host in its own thread, admitted by `order.Schedule`."""
        reports = {h.name: HostReport(h.name) for h in hosts}
        self.last_reports = [reports[h.name] for h in hosts]
        plan = order.waves(hosts, self.opts.max_parallel)
        sched = order.Schedule(plan, ahead=self.opts.max_parallel)
        self._sched, self._slots = sched, {}
        by_name = {h.name: h for h in hosts}
        deploys: dict[str, HostDeploy] = {}
        futures: list[Future[None]] = []
        workers = ThreadPoolExecutor(max_workers=max(1, len(hosts)), thread_name_prefix="deploy")

        def start(name: str) -> None:
            hd = HostDeploy(self, by_name[name], reports[name], (closures or {}).get(name))
            hd.slot = _Slot(self, name)
            deploys[name] = hd
            futures.append(workers.submit(self._work, hd))

        try:
            self._coordinate(hosts, reports, start)
        except KeyboardInterrupt:
            # Stop at safe points: prepared hosts do not activate, activated ones finish
            # verifying or roll back (their guard stays armed until then).
            self.cancel.set()
            self._stop("not started: interrupted")
            for name in deploys:
                if sched.state[name] not in (order.DONE, order.CLOSING):
                    self.progress.note(name, "interrupt: stopping at the next safe point")
            wait(futures)  # every wait of a host is bounded; later signals do not raise
            raise
        finally:
            self._stop("not started: the deploy stopped")  # no host waits for ever
            workers.shutdown(wait=True)
            for name in sched.order:  # never started: say why
                rep = reports[name]
                if rep.outcome is Outcome.SKIPPED and not rep.message:
                    rep.message = sched.stopped
            self.pool.close_all()
        return [reports[h.name] for h in hosts]

    def _work(self, hd: HostDeploy) -> None:
        try:
            hd.run()
        finally:
            with self._cond:
                self._sched_or_fail().done(hd.host.name)
                self._cond.notify_all()

    def _sched_or_fail(self) -> order.Schedule:
        if self._sched is None:
            raise RuntimeError("no deploy running")
        return self._sched

    def _coordinate(
        self,
        hosts: Sequence[Host],
        reports: dict[str, HostReport],
        start: Callable[[str], None],
    ) -> None:
        """The main thread: start preparations, enter stages (after_servers, the server
        gate), grant activation slots, until every host is done or may no longer start."""
        sched = self._sched_or_fail()
        while True:
            with self._cond:
                if sched.finished():
                    return
                for name in sched.to_prepare():  # also while a stage is being entered
                    start(name)
                entering = sched.stage_done() and not sched.stopped
                if not entering:
                    for name in sched.to_activate():
                        self._slots[name].grant("")
                    self._show(sched)
                    self._cond.wait(0.2)
                    continue
            # outside the lock: these take round trips, hosts keep preparing meanwhile
            self._enter_next_stage(hosts, reports, sched)

    def _enter_next_stage(
        self, hosts: Sequence[Host], reports: dict[str, HostReport], sched: order.Schedule
    ) -> None:
        done = sched.waves[sched.stage] if sched.stage >= 0 else None
        nxt = sched.next_wave()
        why = ""
        if (
            done is not None
            and done.kind != "agents"
            and (nxt is None or nxt.kind == "agents")
            and all(reports[h.name].ok for h in done.hosts)
        ):
            self.after_servers(hosts, reports)
        if nxt is not None and nxt.kind == "agents":
            why = self.server_gate(hosts, reports)
        with self._cond:
            sched.advance()
            if nxt is None:
                self._cond.notify_all()
                return
            if why:
                self._stop_locked(f"not started: {why}")
                for h in nxt.hosts:
                    self.progress.note(h.name, f"not started: {why}")
            elif not sched.stopped and nxt.kind == "agents" and len(nxt.hosts) > 1:
                self.progress.schedule(
                    f"wave {nxt.index} (agents): {', '.join(nxt.names)}; at most "
                    f"{nxt.window} activated and not yet verified at once"
                )

    def _show(self, sched: order.Schedule) -> None:
        """The live view's caption: slots in use, copies ready."""
        if 0 <= sched.stage < len(sched.waves):
            w = sched.waves[sched.stage]
            self.progress.caption(
                f"wave {w.index} ({w.kind}): {sched.count(order.ACTIVE, stage=sched.stage)} "
                f"of {w.window} activated and not yet verified; "
                f"{sched.count(order.READY)} prepared, {sched.count(order.PREPARING)} preparing"
            )

    # ----------------------------------------------------------- stop, slots (any thread)

    @property
    def stop_reason(self) -> str:
        """Why no further host activates ("" while they may)."""
        return self._sched.stopped if self._sched is not None else ""

    def _stop(self, reason: str) -> None:
        with self._cond:
            self._stop_locked(reason)

    def _stop_locked(self, reason: str) -> None:
        if self._sched is None:
            return
        self._sched.stop(reason)
        for slot in self._slots.values():  # every host not yet let through: not started
            slot.grant(self._sched.stopped)
        self._cond.notify_all()

    def host_failed(self, host: str, step: str) -> None:
        """A host failed (at any step): no further host activates, unless --keep-going
        (then only the server gate before the agents still holds)."""
        if not self.opts.keep_going:
            self._stop(f"not started: {host} failed at {step}")

    def waiting_for(self, name: str) -> str:
        """What a prepared host waits for (the progress line)."""
        with self._cond:
            sched = self._sched_or_fail()
            i = sched.wave_of[name]
            if i > sched.stage:
                earlier = sched.waves[max(sched.stage, 0)]
                return f"prepared; waiting for wave {earlier.index} ({earlier.kind}) to finish"
            w = sched.waves[i]
            busy = sched.count(order.ACTIVE, stage=i)
            return f"prepared; waiting for an activation slot ({busy} of {w.window} in use)"

    def _await_slot(self, name: str) -> str:
        """Called by a prepared host: '' when it may activate, else why not."""
        slot = self._slots[name]
        with self._cond:
            sched = self._sched_or_fail()
            if sched.stopped:
                return sched.stopped
            sched.ready(name)
            self._cond.notify_all()
        slot.event.wait()
        return slot.decision

    def _free_slot(self, name: str) -> None:
        with self._cond:
            if self._sched is not None:
                self._sched.release(name)
            self._cond.notify_all()

    def after_servers(self, hosts: Sequence[Host], reports: dict[str, HostReport]) -> None:
        """Seam: runs once the servers of this run are deployed and healthy, before any
        agent activates (and at the end when only servers were deployed)."""

    def server_gate(self, hosts: Sequence[Host], reports: dict[str, HostReport]) -> str:
        """'' when the servers agents join are healthy, else why not. Servers deployed in
        this run count by their outcome; the others are checked once now."""
        for s in self.inv.servers:
            rep = reports.get(s.name)
            if rep is not None:
                if rep.ok:
                    continue
                if rep.healthy_after_rollback:
                    continue
                return f"server {s.name} is failing its checks ({rep.failed_step or rep.outcome})"
            try:
                own = self.connect(s)
            except RemoteError as exc:
                return f"server {s.name} is unreachable ({exc})"
            results = checks.wait_healthy(
                s,
                self.inv,
                own,
                own,
                timeout=min(self.opts.check_timeout, 30),
                cancelled=self.cancel.is_set,
            )
            bad = checks.failures(results)
            if bad:
                return f"server {s.name} is failing its checks ({'; '.join(map(str, bad))})"
        return ""


# ---------------------------------------------------------------------- one host


class HostDeploy:
    """One host's deploy or rollback: `run()` calls one method per step, in order.
    Step names (the report's and the progress's) are the strings passed to `_step`."""

    def __init__(self, engine: Engine, host: Host, rep: HostReport, fixed: Closure | None):
        self.e = engine
        self.opts = engine.opts
        self.progress = engine.progress
        self.host = host
        self.rep = rep
        self.fixed = fixed
        self.locked = False
        #: the engine's queue for an activation slot (None: activate at once)
        self.slot: _Slot | None = None
        self._own: Connection | None = None
        self._st: probe.HostState | None = None

    # -------------------------------------------------------------- plumbing

    @property
    def own(self) -> Connection:
        """The working connection (re-opened by `confirm` when activation cut it)."""
        if self._own is None:
            raise HostFailed("not connected")
        return self._own

    @property
    def st(self) -> probe.HostState:
        """What preflight found (the generation to go back to)."""
        if self._st is None:
            raise HostFailed("no preflight")
        return self._st

    def _guard(self, action: str, new: str, mode: str, confirm_timeout: int) -> watchdog.GuardArgs:
        """The guard's arguments for this run and host (back to what preflight saw)."""
        return watchdog.GuardArgs(
            run_id=self.e.run_id, action=action, new=new, mode=mode,
            old_generation=self.st.generation, old=self.st.current,
            confirm_timeout=confirm_timeout, lock_dir=lock.LOCK_DIR,
        )  # fmt: skip

    def _pause(self, point: str) -> None:
        """A named point where the lab tests stop (and kill) the deployer
        (signals.pause_point; HYDRADEPLOY_PAUSE_AT)."""
        signals.pause_point(self.host.name, point, self.e.cancel.is_set)

    def _step(self, name: str, fn: Callable[[], object], detail: str = "") -> object:
        self.progress.step(self.host.name, name, detail)
        t = time.monotonic()
        try:
            out = fn()
        except Exception as exc:
            self.rep.steps.append(StepResult(name, False, str(exc), time.monotonic() - t))
            raise
        self.rep.steps.append(StepResult(name, True, "", time.monotonic() - t))
        return out

    def _fail(self, step: str, message: str, outcome: Outcome = Outcome.FAILED) -> HostFailed:
        rep = self.rep
        if self.e.cancel.is_set() and outcome is Outcome.FAILED and step in BEFORE_CHANGE:
            # Ctrl-C also reaches local children (nix-store --export): the step failed
            # because the user stopped it, and nothing on the host changed yet.
            outcome = Outcome.INTERRUPTED
            message = f"interrupted during {step}; nothing changed ({message})"
        rep.failed_step, rep.message, rep.outcome = step, message, outcome
        self.progress.note(rep.host, f"{step} failed: {message}")
        if outcome is not Outcome.INTERRUPTED:
            self.e.host_failed(self.host.name, step)  # no further host activates
        return HostFailed(message)

    # -------------------------------------------------------------- the flow

    def run(self) -> None:
        t0 = time.monotonic()
        before = CONNECTIONS[self.host.name]
        try:
            target = self.prepare()
            self.wait_for_slot()
            try:
                self.change(target)
            finally:
                if self.slot is not None:
                    self.slot.release()  # verified, rolled back or given up
        except HostFailed:
            pass
        except NotStarted as exc:
            self.not_started(str(exc))
        except RemoteError as exc:
            step = self.rep.steps[-1].step if self.rep.steps else "connect"
            outcome = Outcome.FAILED if self.rep.outcome is Outcome.SKIPPED else self.rep.outcome
            self._fail(step, str(exc), outcome)
        except closure.ClosureError as exc:
            # the step that raised it (closure or copy), the host named once
            step = self.rep.steps[-1].step if self.rep.steps else "closure"
            said = str(exc)
            named = said if said.startswith(f"{self.host.name}: ") else f"{self.host.name}: {said}"
            self._fail(step, named)
        finally:
            self.finish(t0, before)

    def prepare(self) -> Closure:
        """Everything before a change: the host is exactly as found when this returns."""
        self.connect()
        self._halt("connect")
        self.preflight()
        self._halt("preflight")
        self.lock()
        self._halt("lock")
        target = self.fixed or self.closure()
        self.rep.closure_after = target.path
        if self.fixed is None:
            self._step("copy", lambda: self.copy(target))
        self._halt("copy")
        return target

    def _halt(self, step: str) -> None:
        """Between steps that change nothing: stop here on Ctrl-C or after another
        host failed."""
        if self.e.cancel.is_set():
            raise self._fail(
                step, "interrupted before activation; nothing changed", Outcome.INTERRUPTED
            )
        if self.slot is not None and self.e.stop_reason:
            raise NotStarted(self.e.stop_reason)

    def wait_for_slot(self) -> None:
        """Prepared: wait until fewer than the stage's window of hosts are activated and
        not yet verified (and earlier stages are done); then, after a long wait, make
        sure the host is still as preflight found it."""
        if self.slot is None:
            return
        self.progress.step(self.host.name, "wait", self.e.waiting_for(self.host.name))
        t = time.monotonic()
        why = self.slot.wait()
        waited = time.monotonic() - t
        self.rep.steps.append(StepResult("wait", not why, why, waited))
        self._halt("wait")
        if why:
            raise NotStarted(why)
        if waited >= REFRESH_AFTER_S:
            self._step("preflight", self.refresh, "again, after waiting for a slot")
            self._halt("wait")

    def refresh(self) -> None:
        """The connection still works (else one new one) and the host still runs what
        preflight saw: the rollback target and the checks' baseline come from it."""
        try:
            st = probe.probe(self.own)
        except RemoteError:  # e.g. an idle connection dropped while waiting
            self.e.drop(self.host)
            self._own = self.e.connect(self.host)
            st = probe.probe(self._own)
        was = self.st
        if (st.current, st.generation) != (was.current, was.generation):
            raise self._fail(
                "preflight",
                f"the host changed while waiting for a slot: generation {st.generation} "
                f"({st.current}), preflight saw {was.generation} ({was.current}); nothing activated",
            )
        self._st = st

    def not_started(self, reason: str) -> None:
        """Prepared, then another host failed: say so, and what stays on the host."""
        rep = self.rep
        copied = (rep.copy or {}).get("sent", 0) + (rep.copy or {}).get("substituted", 0)
        cut = any(s.step == "copy" and not s.ok for s in rep.steps)
        harmless = "harmless (nothing refers to them; the garbage collector removes them)"
        rep.outcome = Outcome.SKIPPED
        rep.message = reason + (
            f"; only prepared: its copy was cut short, the complete store paths stay, {harmless}"
            if cut
            else f"; only prepared: the {copied} store path(s) copied to it stay, {harmless}"
            if copied
            else "; only prepared, nothing copied"
        )
        self.progress.note(self.host.name, rep.message)

    def change(self, target: Closure) -> None:
        """From the guard on: what the goal changes, verified or rolled back."""
        goal = self.opts.goal
        if goal.changes_nothing:
            self.dry_activate(target)
            return
        if not goal.changes_running_system:
            self.profile(target)  # boot: no guard; the next boot is the test
            self.boot(target)
            return
        # switch/test: the guard sets the profile itself, then activates
        activated_at = self.activate_and_confirm(target)
        self.after_rejoin()
        self.verify(activated_at)

    def finish(self, t0: float, connections_before: int) -> None:
        """Release the lock, write the host's record, close an agent's connection."""
        host, rep = self.host, self.rep
        # Released when the host can be reached; a lock left by a run that is gone is
        # taken over by the next deploy from this machine (lock.stale_holder).
        if self.locked:
            own = self.e.pool.peek(host)
            if own is not None:
                with contextlib.suppress(RemoteError):
                    lock.release(own, self.e.run_id)
        rep.seconds = time.monotonic() - t0
        rep.ssh_connections = CONNECTIONS[host.name] - connections_before
        self.progress.step(host.name, str(rep.outcome), rep.message)
        own = self.e.pool.peek(host)
        if own is not None and rep.generation_before is not None:
            record.append_remote(own, {**self.e.record_meta, "finished": record.now_iso()}, rep)
        if not host.is_server:
            self.e.drop(host)

    # -------------------------------------------------------------- steps before any change

    def connect(self) -> None:
        self.progress.step(self.host.name, "connect")
        t = time.monotonic()
        try:
            self._own = self.e.connect(self.host)
        except Unreachable as exc:
            self.rep.steps.append(StepResult("connect", False, str(exc), time.monotonic() - t))
            raise self._fail("connect", str(exc), Outcome.UNREACHABLE) from None
        self.rep.steps.append(StepResult("connect", True, "", time.monotonic() - t))

    def preflight(self) -> None:
        st = self._step("preflight", lambda: probe.probe(self.own))
        assert isinstance(st, probe.HostState)
        self._st = st
        self.rep.generation_before, self.rep.closure_before = st.generation, st.current
        if not st.is_nixos_like:
            raise self._fail("preflight", "not a NixOS host (no /etc/NIXOS)")
        if why := preflight.refusal(self.host.name, st):  # e.g. a full /nix: before any change
            raise self._fail("preflight", why)
        if not st.current or st.generation is None:
            raise self._fail("preflight", f"no current system generation in {SYSTEM_PROFILE}")

    def lock(self) -> None:
        try:
            taken = self._step("lock", lambda: lock.acquire(self.own, self.e.run_id))
            if taken:
                self.progress.note(self.host.name, str(taken))
        except lock.LockHeld as exc:
            raise self._fail("lock", str(exc), Outcome.LOCKED) from None
        self.locked = True

    def closure(self) -> Closure:
        got = self._step("closure", self.obtain_closure)
        assert isinstance(got, Closure)
        return got

    def obtain_closure(self) -> Closure:
        host = self.host
        given = self.opts.closures.get(host.name)
        if given:
            return Closure(given, "prebuilt")
        if self.opts.build_on == "target":
            with openssh.nix_sshopts(host) as sshopts:
                path = closure.build_on_target(
                    self.own, self.opts.flake, openssh.store_uri(host), sshopts
                )
            return Closure(path, "build-target")
        return Closure(closure.build_local(self.opts.flake, host.name), "build-local")

    def copy(self, target: Closure) -> None:
        own, st, rep = self.own, self.st, self.rep
        if target.source != "build-target":
            try:
                stats = self._copy_closure(target)
            except closure.ClosureError:
                if not self.e.cancel.is_set() and self._copy_cancelled():
                    raise NotStarted(self.e.stop_reason) from None
                raise
            rep.copy = stats.as_json()
            rep.steps.append(StepResult("copy-stats", True, str(stats)))
            self.progress.note(self.host.name, f"copy: {stats}")
            new_paths = closure.local_requisites(target.path)
        else:
            new_paths = closure.remote_requisites(own, target.path)
        old_paths = closure.remote_requisites(own, st.current)
        rep.changes = nix.closure_changes(old_paths, new_paths)

    def _copy_closure(self, target: Closure) -> CopyStats:
        return closure.copy_closure(
            self.own,
            target.path,
            free_kb=self.st.store_free_kb,
            substitute=self.opts.substitute,
            compress=self.opts.compress,
            on_line=lambda ln: self.progress.line(self.host.name, ln),
            cancelled=self._copy_cancelled,
        )

    def _copy_cancelled(self) -> bool:
        """Ctrl-C, or another host failed: a copy for a host that will not activate
        stops (the host keeps only complete paths, closure.nix_copy)."""
        return self.e.cancel.is_set() or bool(self.slot is not None and self.e.stop_reason)

    # -------------------------------------------------------------- goals without the guard

    def dry_activate(self, target: Closure) -> None:
        self._step(
            "dry-activate",
            lambda: self.own.run(
                activate.switch_command(target.path, Goal.DRY_ACTIVATE),
                timeout=self.opts.activation_timeout,
                on_line=lambda ln: self.progress.line(self.host.name, ln),
            ),
        )
        self.rep.outcome = Outcome.UNCHANGED
        self.rep.message = "dry-activate: nothing changed"
        self.rep.generation_after = self.st.generation

    def profile(self, target: Closure) -> None:
        self._step(
            "profile",
            lambda: self.own.run(
                activate.profile_command(target),
                timeout=120,
                check=True,
                what="set the system profile",
            ),
        )

    def boot(self, target: Closure) -> None:
        self._step(
            "boot",
            lambda: self.own.run(
                activate.switch_command(target.path, Goal.BOOT),
                timeout=self.opts.activation_timeout,
                check=True,
                what="switch-to-configuration boot",
            ),
        )
        self.rep.outcome, self.rep.message = Outcome.UNCHANGED, "boot: active after the next reboot"
        self.rep.generation_after = probe.probe(self.own).generation

    # -------------------------------------------------------------- activation

    def activate_and_confirm(self, target: Closure) -> float | None:
        """Returns when the activation ended, in the host's clock."""
        host, st, rep, opts = self.host, self.st, self.rep, self.opts
        own = self.own
        guard = replace(
            self._guard(
                "activate", target.path, str(opts.goal),
                opts.confirm_timeout if opts.rollback else 0,
            ),
            set_profile=activate.guard_profile_step(target, opts.goal),
        )  # fmt: skip
        self._pause("arm")  # nothing changed yet
        self._halt("arm")  # the last point where stopping leaves the host untouched
        try:
            how = self._step("arm", lambda: watchdog.arm(own, guard))
        except RemoteError as exc:  # the guard sets the profile: say what the profile is
            restored = armed.restore_profile(own, guard.state_dir, st.generation)
            self._fail("arm", f"{exc}; {restored}")
            raise HostFailed(rep.message) from None
        self.progress.step(host.name, "activate", f"guard: {how}")
        self._pause("armed")  # the guard owns profile and activation
        t = time.monotonic()
        rc: int | None = None
        activated_at: float | None = None
        lost = ""
        deadline = t + opts.activation_timeout
        while time.monotonic() < deadline:
            try:
                rc, activated_at, last = watchdog.wait_activated(own, guard.state_dir, 2)
            except (ConnectionLost, RemoteTimeout) as exc:
                lost = str(exc)
                self.e.drop(host)  # suspect: reconnect after the confirm if the host is fine
                break
            if last:
                self.progress.line(host.name, last)
            if rc is not None:
                break
            if self.e.cancel.is_set():
                break
        if self.e.cancel.is_set() and rc in (None, 0):
            rep.steps.append(StepResult("activate", rc == 0, "interrupted", time.monotonic() - t))
            msg = (
                f"interrupted during activation; the watchdog rolls back to generation {st.generation} "
                f"within {opts.confirm_timeout} s unless confirmed"
                if opts.rollback
                else "interrupted during activation (no watchdog: --no-rollback)"
            )
            raise self._fail("activate", msg, Outcome.INTERRUPTED)
        if rc is None and not lost:
            rep.steps.append(StepResult("activate", False, "timed out", time.monotonic() - t))
            self._fail(
                "activate",
                f"switch-to-configuration {opts.goal} still running after {opts.activation_timeout:g} s",
            )
            if opts.rollback:
                # the guard rolls back once the activation ends
                watchdog.decide(own, guard.state_dir, "rollback")
                rep.message += (
                    f"; the host rolls back to generation {st.generation} when it finishes"
                )
            raise HostFailed(rep.message)
        if rc is not None and rc != 0:
            last = ""
            try:
                tail = own.run(["tail", "-n", "3", f"{guard.state_dir}/activation.log"], timeout=10)
                last = " / ".join(ln.strip() for ln in tail.stdout.splitlines() if ln.strip())
            except RemoteError:
                pass
            rep.steps.append(StepResult("activate", False, last, time.monotonic() - t))
            guard_says = (
                last.rpartition("hydradeploy guard: ")[2] if "hydradeploy guard: " in last else ""
            )
            what = (
                f"the rollback guard died before activating: {last or 'no output'}"
                if rc == watchdog.DEAD
                else guard_says
                or f"switch-to-configuration {opts.goal} exited with status {rc}: {last or 'no output'}"
            )
            self._fail("activate", what)
            if opts.rollback:
                self.rollback_via_guard(own, guard, decide=rc != watchdog.DEAD)
            raise HostFailed(rep.message)
        rep.steps.append(StepResult("activate", rc == 0, lost, time.monotonic() - t))
        self._pause("activated")  # before the confirm
        self.confirm(guard, lost)
        return activated_at

    def confirm(self, guard: watchdog.GuardArgs, lost: str) -> None:
        """Disarm only after a NEW SSH connection succeeds."""
        host, rep, opts = self.host, self.rep, self.opts
        self.progress.step(host.name, "confirm", "new SSH connection")
        t = time.monotonic()
        window = opts.confirm_timeout if opts.rollback else 10
        deadline = t + window
        last_err = lost
        key_changed = False
        while True:
            try:
                with self.e.pool.fresh(
                    host, timeout=min(5.0, max(1.0, deadline - time.monotonic()))
                ) as fresh:
                    extra = armed.extension_s(opts.check_timeout, opts.stability_window)
                    decision = (  # the guard stays armed through the checks (issue 15)
                        armed.reached(fresh, guard.state_dir, extra) if opts.rollback else "reached"
                    )
                break
            except RemoteError as exc:
                last_err = str(exc)
                # a changed host key will not come right by retrying: roll back now
                # through the working connection
                key_changed = isinstance(exc, HostKeyChanged)
                if time.monotonic() >= deadline or key_changed:
                    decision = ""
                    break
                time.sleep(0.5)
        if decision == "reached":
            rep.steps.append(StepResult("confirm", True, "", time.monotonic() - t))
            # the working connection died during activation: open a new one
            self._own = self.e.pool.peek(host) or self.e.connect(host)
            return
        rep.steps.append(StepResult("confirm", False, last_err, time.monotonic() - t))
        if not opts.rollback:
            raise self._fail(
                "confirm",
                f"no new SSH connection after activation: {last_err} (--no-rollback: left as is)",
            )
        # The watchdog decides on the host; wait for the host to come back and tell us.
        if decision == "watchdog":
            why = (
                f"no confirmation reached the host within {opts.confirm_timeout} s of the "
                f"activation ({last_err or 'the host was unreachable'})"
            )
        elif key_changed:
            why = f"the new SSH connection after activation was refused: {last_err}"
        else:
            why = f"no new SSH connection within {opts.confirm_timeout} s after activation: {last_err or 'refused'}"
        self._fail("confirm", why)
        self.await_host_rollback(guard)
        raise HostFailed(rep.message)

    def after_rejoin(self) -> None:
        """Seam: runs after the host confirmed (it is back on the network with the new
        generation) and before its join checks; steps that must see the node rejoined
        but come before the checks (node label sync) go here."""

    # -------------------------------------------------------------- rollback

    def await_host_rollback(self, guard: watchdog.GuardArgs) -> None:
        host, st, rep, opts = self.host, self.st, self.rep, self.opts
        self.progress.step(host.name, "rollback", "waiting for the host's watchdog")
        deadline = time.monotonic() + opts.confirm_timeout + opts.check_timeout + 60
        # A new config that broke sshd leaves the working session up: ask through it.
        own = self.e.pool.peek(host)
        if own is not None:
            try:
                own.run(["true"], timeout=5, what="reuse the working connection")
            except RemoteError:
                own = None
        if own is None:
            self.e.drop(host)
        while own is None and time.monotonic() < deadline:
            try:
                own = self.e.connect(host)
                break
            except RemoteError:
                time.sleep(1)
        if own is None:
            rep.message += "; the host did not come back (its watchdog rolls back by itself)"
            rep.outcome = Outcome.FAILED
            return
        self._own = own
        decision = watchdog.decide(own, guard.state_dir, "rollback")
        result, _last = self._wait_rollback(own, guard.state_dir)
        rep.outcome = Outcome.ROLLED_BACK_BY_HOST if decision == "watchdog" else Outcome.ROLLED_BACK
        self.progress.note(
            host.name,
            f"{rep.outcome}: generation {st.generation} ({result or 'rollback still running'})",
        )
        self.recheck(own, result)

    def _wait_rollback(self, own: Connection, state_dir: str) -> tuple[str | None, str]:
        deadline = time.monotonic() + self.opts.activation_timeout
        while time.monotonic() < deadline:
            result, last = watchdog.wait_rolled_back(own, state_dir, 2)
            if result is not None:
                return result, last
        return None, ""

    def rollback_via_guard(
        self, own: Connection, guard: watchdog.GuardArgs, *, decide: bool
    ) -> None:
        """Roll back to the generation the host had: through the armed guard (`decide`)
        or a new guard run in rollback mode (after the watchdog was disarmed)."""
        st, rep = self.st, self.rep
        self.progress.step(self.host.name, "rollback", f"to generation {st.generation}")
        if decide:
            decision = watchdog.decide(own, guard.state_dir, "rollback")
            state_dir = guard.state_dir
            by_host = decision == "watchdog"
        else:
            rb = self._guard("rollback", guard.new, "switch", 0)
            watchdog.arm(own, rb)
            state_dir, by_host = rb.state_dir, False
        result, _last = self._wait_rollback(own, state_dir)
        if result is None or not result.startswith("0 "):
            rep.outcome = Outcome.FAILED
            rep.message += (
                f"; rollback to generation {st.generation} failed ({result or 'timed out'})"
            )
            self.progress.note(self.host.name, rep.message)
            return
        rep.outcome = Outcome.ROLLED_BACK_BY_HOST if by_host else Outcome.ROLLED_BACK
        self.recheck(own, result)

    def recheck(self, own: Connection, result: str | None) -> None:
        host, st, rep = self.host, self.st, self.rep
        self.progress.step(host.name, "re-check", f"generation {st.generation}")
        now = probe.probe(own)
        rep.generation_after, rep.closure_after = now.generation, now.current
        source = self.e.kube_for(host, own)
        results = checks.wait_healthy(
            host,
            self.e.inv,
            own,
            source,
            timeout=self.opts.check_timeout,
            cancelled=self.e.cancel.is_set,
            fresh_since=_ended_at(result),
            # the old generation's k3s re-merged its --node-label values: the inventory's again
            failed_before=self.st.failed_units,
            before_checks=lambda facts: node_sync.during_deploy(
                host, self.e.inv, source, facts, rep, lambda t: self.progress.line(host.name, t)
            ),
        )
        bad = checks.failures(results)
        rep.healthy_after_rollback = not bad and now.current == st.current
        state = (
            "healthy" if rep.healthy_after_rollback else "NOT healthy: " + "; ".join(map(str, bad))
        )
        rep.message += f"; back on generation {now.generation}, {state}"
        self.progress.note(host.name, f"{rep.outcome}; generation {now.generation}, {state}")

    # -------------------------------------------------------------- checks

    def verify(self, fresh_since: float | None) -> None:
        host, rep, own = self.host, self.rep, self.own
        self._pause("reached")  # the guard waits for the checks
        self.progress.step(host.name, "checks")
        t = time.monotonic()

        def show(results: list[CheckResult]) -> None:
            bad = checks.failures(results)
            self.progress.line(host.name, "; ".join(map(str, bad)) if bad else "all checks pass")

        source = self.e.kube_for(host, own)
        results = checks.wait_healthy(
            host,
            self.e.inv,
            own,
            source,
            timeout=self.opts.check_timeout,
            cancelled=self.e.cancel.is_set,
            on_poll=show,
            fresh_since=fresh_since,
            # after the node rejoined, before the checks: labels/taints from the inventory
            failed_before=self.st.failed_units,
            before_checks=lambda facts: node_sync.during_deploy(
                host, self.e.inv, source, facts, rep, lambda t: self.progress.line(host.name, t)
            ),
        )
        bad = checks.failures(results)
        if not bad:  # still armed: k3s must stay up and the node Ready for a while
            window = self.opts.stability_window
            self.progress.step(host.name, "stability", f"{window:g} s")
            bad = stability.hold(host, self.e.inv, own, source, window,
                                 on_poll=lambda text: self.progress.line(host.name, text))  # fmt: skip
        rep.steps.append(
            StepResult("checks", not bad, "; ".join(map(str, bad)), time.monotonic() - t)
        )
        expected = rep.closure_after
        try:
            now = probe.probe(own)
        except RemoteError as exc:  # cut during the checks: the armed guard rolls it back
            cause = str(exc).removeprefix(f"{host.name}: ").removeprefix("preflight: ")
            self._fail("checks", f"host unreachable during the checks: {cause}")
            if self.opts.rollback:
                self.await_host_rollback(self._guard("activate", "", str(self.opts.goal), 0))
            raise HostFailed(rep.message) from None
        rep.generation_after, rep.closure_after = now.generation, now.current
        if not bad and now.current != expected:  # healthy is not enough: this deploy's closure
            bad = [CheckResult("closure", False, f"running {now.current}, deployed {expected}")]
        guard_dir = f"{lock.RUNS_DIR}/{self.e.run_id}-activate"
        if not bad:
            self._pause("confirm")  # checks passed, guard still armed
        if (
            not bad
            and self.opts.rollback
            and (d := watchdog.decide(own, guard_dir, "confirmed")) != "confirmed"
        ):
            bad = [
                CheckResult("confirm", False, f"the guard decided {d!r} before the checks ended")
            ]
        if not bad:
            rep.outcome = Outcome.DEPLOYED
            rep.message = (
                f"generation {now.generation}, stable for {self.opts.stability_window:g} s"
            )
            self._pause("confirmed")  # lock, record
            return
        if self.e.cancel.is_set():  # not verified: roll back rather than leave it unverified
            bad = [CheckResult(r.name, False, f"interrupted: {r.detail}") for r in bad]
        rep.failed_checks = bad
        self._fail("checks", "; ".join(map(str, bad)))
        if self.opts.rollback:
            guard = self._guard("activate", now.current, str(self.opts.goal), 0)
            self.rollback_via_guard(own, guard, decide=True)  # still armed
        raise HostFailed(rep.message)
