"""The deploy flow, per host: preflight → lock → closure → set profile → arm the guard
(it activates) → confirm over a new connection → join checks → on failure roll back
and re-check. Across hosts: waves from `order`, a server gate before the agents, stop
after a failed wave unless --keep-going, Ctrl-C stops at safe points.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from hydradeploy.deploy import (
    activate,
    armed,
    checks,
    closure,
    lock,
    nix,
    order,
    preflight,
    probe,
    record,
    stability,
    watchdog,
)
from hydradeploy.deploy.models import (
    SYSTEM_PROFILE,
    CheckResult,
    Closure,
    HostReport,
    Outcome,
    StepResult,
    Wave,
)
from hydradeploy.deploy.progress import Progress
from hydradeploy.deploy.remote import (
    CONNECTIONS,
    ConnectionLost,
    Remote,
    RemoteError,
    RemoteTimeout,
    Unreachable,
)
from hydradeploy.inventory import Host, Inventory


@dataclass
class Options:
    mode: str = "switch"
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


def _ended_at(result: str | None) -> float | None:
    """The epoch in a guard's "rc who epoch" rollback result."""
    parts = (result or "").split()
    return float(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None


# Steps after which the host is still exactly as the deploy found it.
BEFORE_CHANGE = frozenset({"connect", "preflight", "lock", "closure", "copy"})


class HostFailed(Exception):
    """Ends one host's deploy; the report already says why."""


class Interrupted(Exception):
    pass


class Engine:
    def __init__(self, inv: Inventory, opts: Options, progress: Progress, run_id: str) -> None:
        self.inv = inv
        self.opts = opts
        self.progress = progress
        self.run_id = run_id
        self.cancel = threading.Event()
        self._pool: dict[str, Remote] = {}
        self._pool_lock = threading.Lock()
        self._kube_lock = threading.Lock()
        self.kube_remote: Remote | None = None
        self._nodes: checks.NodeSource | None = None
        self.last_reports: list[HostReport] = []
        #: run facts copied into each host's own record (id, user, machine, command …)
        self.record_meta: dict[str, object] = {}

    # ------------------------------------------------------------------ connections

    def connect(self, host: Host) -> Remote:
        with self._pool_lock:
            r = self._pool.get(host.name)
            if r is not None and r.alive:
                return r
        r = Remote(host).open()
        with self._pool_lock:
            self._pool[host.name] = r
        return r

    def drop(self, host: Host) -> None:
        with self._pool_lock:
            r = self._pool.pop(host.name, None)
        if r is not None:
            r.close()

    def close_all(self) -> None:
        with self._pool_lock:
            remotes = list(self._pool.values())
            self._pool.clear()
        for r in remotes:
            r.close()

    def kube(self) -> Remote | None:
        """A connection to a server to ask k3s about nodes: the cluster-init server's
        working connection when it has one, else the first server that answers."""
        with self._kube_lock:
            if self.kube_remote is not None and self.kube_remote.alive:
                return self.kube_remote
            servers = sorted(self.inv.servers, key=lambda h: not h.cluster_init)
            for s in servers:
                try:
                    self.kube_remote = self.connect(s)
                    return self.kube_remote
                except RemoteError:
                    continue
            return None

    def kube_for(self, host: Host, own: Remote | None) -> checks.NodeSource:
        """Where to read node objects: a server's own API, else the shared server listing."""
        if host.is_server and own is not None:
            return checks.NodeSource(own)
        kube = self.kube()
        with self._kube_lock:
            if self._nodes is None or self._nodes.kube is not kube:
                self._nodes = checks.NodeSource(kube)
            return self._nodes

    # ------------------------------------------------------------------ many hosts

    def run(
        self, hosts: Sequence[Host], closures: dict[str, Closure] | None = None
    ) -> list[HostReport]:
        """Deploy (or roll back, when `closures` name generations) `hosts` in waves."""
        reports = {h.name: HostReport(h.name) for h in hosts}
        self.last_reports = [reports[h.name] for h in hosts]
        plan = order.waves(hosts, self.opts.max_parallel)
        stop_reason = ""
        servers_checked = False
        try:
            for wave in plan:
                if self.cancel.is_set():
                    stop_reason = "not started: interrupted"
                if stop_reason:
                    for h in wave.hosts:
                        reports[h.name].outcome = Outcome.SKIPPED
                        reports[h.name].message = stop_reason
                    continue
                if wave.kind == "agents" and not servers_checked:
                    servers_checked = True
                    gate = self.server_gate(hosts, reports)
                    if gate:
                        stop_reason = f"not started: {gate}"
                        for h in wave.hosts:
                            reports[h.name].message = stop_reason
                            self.progress.note(h.name, stop_reason)
                        continue
                self.run_wave(wave, reports, closures)
                failed = [h.name for h in wave.hosts if not reports[h.name].ok]
                if failed and not self.opts.keep_going:
                    stop_reason = f"not started: {', '.join(failed)} failed in wave {wave.index}"
                elif failed and wave.kind != "agents":
                    # --keep-going, but agents still wait for a healthy server (gate)
                    servers_checked = False
        except KeyboardInterrupt:
            for r in self.last_reports:
                if r.outcome == Outcome.SKIPPED and not r.message:
                    r.message = "not started: interrupted"
            raise
        finally:
            self.close_all()
        return [reports[h.name] for h in hosts]

    def run_wave(
        self, wave: Wave, reports: dict[str, HostReport], closures: dict[str, Closure] | None
    ) -> None:
        pool = ThreadPoolExecutor(max_workers=len(wave.hosts), thread_name_prefix="deploy")
        futures: dict[Future[None], str] = {
            pool.submit(self.host_flow, h, reports[h.name], (closures or {}).get(h.name)): h.name
            for h in wave.hosts
        }
        try:
            pending = set(futures)
            while pending:
                _done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        except KeyboardInterrupt:
            # Stop at safe points: hosts mid-activation keep their watchdog armed.
            self.cancel.set()
            for h in wave.hosts:
                self.progress.note(h.name, "interrupt: stopping at the next safe point")
            wait(set(futures))
            pool.shutdown()
            raise
        pool.shutdown()

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

    # ------------------------------------------------------------------ one host

    def _step(
        self, rep: HostReport, name: str, fn: Callable[[], object], detail: str = ""
    ) -> object:
        self.progress.step(rep.host, name, detail)
        t = time.monotonic()
        try:
            out = fn()
        except Exception as exc:
            rep.steps.append(StepResult(name, False, str(exc), time.monotonic() - t))
            raise
        rep.steps.append(StepResult(name, True, "", time.monotonic() - t))
        return out

    def _fail(
        self, rep: HostReport, step: str, message: str, outcome: Outcome = Outcome.FAILED
    ) -> HostFailed:
        if self.cancel.is_set() and outcome is Outcome.FAILED and step in BEFORE_CHANGE:
            # Ctrl-C also reaches local children (nix-store --export): the step failed
            # because the user stopped it, and nothing on the host changed yet.
            outcome = Outcome.INTERRUPTED
            message = f"interrupted during {step}; nothing changed ({message})"
        rep.failed_step, rep.message, rep.outcome = step, message, outcome
        self.progress.note(rep.host, f"{step} failed: {message}")
        return HostFailed(message)

    def host_flow(self, host: Host, rep: HostReport, fixed: Closure | None) -> None:
        t0 = time.monotonic()
        before = CONNECTIONS[host.name]
        own: Remote | None = None
        locked = False
        try:
            self.progress.step(host.name, "connect")
            t = time.monotonic()
            try:
                conn = self.connect(host)
            except Unreachable as exc:
                rep.steps.append(StepResult("connect", False, str(exc), time.monotonic() - t))
                raise self._fail(rep, "connect", str(exc), Outcome.UNREACHABLE) from None
            rep.steps.append(StepResult("connect", True, "", time.monotonic() - t))
            own = conn
            st = self._step(rep, "preflight", lambda: probe.probe(conn))
            assert isinstance(st, probe.HostState)
            rep.generation_before, rep.closure_before = st.generation, st.current
            if not st.is_nixos_like:
                raise self._fail(rep, "preflight", "not a NixOS host (no /etc/NIXOS)")
            if why := preflight.refusal(host.name, st):  # e.g. a full /nix: before any change
                raise self._fail(rep, "preflight", why)
            if not st.current or st.generation is None:
                raise self._fail(
                    rep, "preflight", f"no current system generation in {SYSTEM_PROFILE}"
                )
            try:
                taken = self._step(rep, "lock", lambda: lock.acquire(conn, self.run_id))
                if taken:
                    self.progress.note(host.name, str(taken))
            except lock.LockHeld as exc:
                raise self._fail(rep, "lock", str(exc), Outcome.LOCKED) from None
            locked = True
            target = fixed or self._step(rep, "closure", lambda: self.obtain_closure(host, conn))
            assert isinstance(target, Closure)
            rep.closure_after = target.path
            if fixed is None:
                self._step(rep, "copy", lambda: self.copy(host, conn, target, st, rep))
            if self.cancel.is_set():
                raise self._fail(
                    rep,
                    "copy",
                    "interrupted before activation; nothing changed",
                    Outcome.INTERRUPTED,
                )
            mode = self.opts.mode
            if mode == "dry-activate":
                self._step(
                    rep,
                    "dry-activate",
                    lambda: conn.run(
                        activate.switch_command(target.path, mode),
                        timeout=self.opts.activation_timeout,
                        on_line=lambda ln: self.progress.line(host.name, ln),
                    ),
                )
                rep.outcome = Outcome.UNCHANGED
                rep.message = "dry-activate: nothing changed"
                rep.generation_after = st.generation
                return
            if activate.sets_profile(mode):
                self._step(
                    rep,
                    "profile",
                    lambda: conn.run(
                        activate.profile_command(target),
                        timeout=120,
                        check=True,
                        what="set the system profile",
                    ),
                )
            if mode == "boot":
                self._step(
                    rep,
                    "boot",
                    lambda: conn.run(
                        activate.switch_command(target.path, "boot"),
                        timeout=self.opts.activation_timeout,
                        check=True,
                        what="switch-to-configuration boot",
                    ),
                )
                rep.outcome, rep.message = Outcome.UNCHANGED, "boot: active after the next reboot"
                rep.generation_after = probe.probe(conn).generation
                return
            activated_at = self.activate_and_confirm(host, conn, target, st, rep)
            own = self._pool.get(host.name, conn)
            self.verify(host, own, st, rep, activated_at)
        except HostFailed:
            pass
        except RemoteError as exc:
            step = rep.steps[-1].step if rep.steps else "connect"
            outcome = Outcome.FAILED if rep.outcome is Outcome.SKIPPED else rep.outcome
            self._fail(rep, step, str(exc), outcome)
        except closure.ClosureError as exc:
            self._fail(rep, "closure", f"{host.name}: {exc}")
        finally:
            # Released when the host can be reached; a lock left by a run that is gone is
            # taken over by the next deploy from this machine (lock.stale_holder).
            if locked:
                own2 = self._pool.get(host.name)
                if own2 is not None and own2.alive:
                    with contextlib.suppress(RemoteError):
                        lock.release(own2, self.run_id)
            rep.seconds = time.monotonic() - t0
            rep.ssh_connections = CONNECTIONS[host.name] - before
            self.progress.step(host.name, str(rep.outcome), rep.message)
            own3 = self._pool.get(host.name)
            if own3 is not None and own3.alive and rep.generation_before is not None:
                record.append_remote(own3, {**self.record_meta, "finished": record.now_iso()}, rep)
            if not host.is_server:
                self.drop(host)

    def obtain_closure(self, host: Host, own: Remote) -> Closure:
        given = self.opts.closures.get(host.name)
        if given:
            return Closure(given, "prebuilt")
        if self.opts.build_on == "target":
            path = closure.build_on_target(
                own,
                self.opts.flake,
                nix.store_uri(host.ssh.user, host.address),
                nix.nix_sshopts(host.ssh),
            )
            return Closure(path, "build-target")
        return Closure(closure.build_local(self.opts.flake, host.name), "build-local")

    def copy(
        self, host: Host, own: Remote, target: Closure, st: probe.HostState, rep: HostReport
    ) -> None:
        if target.source != "build-target":
            stats = closure.copy_closure(
                own,
                target.path,
                free_kb=st.store_free_kb,
                on_line=lambda ln: self.progress.line(host.name, ln),
            )
            rep.steps.append(
                StepResult(
                    "copy-stats", True, f"{stats.sent} of {stats.paths} paths, {stats.bytes} bytes"
                )
            )
            new_paths = closure.local_requisites(target.path)
        else:
            new_paths = closure.remote_requisites(own, target.path)
        old_paths = closure.remote_requisites(own, st.current)
        rep.changes = nix.closure_changes(old_paths, new_paths)

    # ------------------------------------------------------------------ activation

    def activate_and_confirm(
        self, host: Host, own: Remote, target: Closure, st: probe.HostState, rep: HostReport
    ) -> float | None:
        """Returns when the activation ended, in the host's clock."""
        guard = watchdog.GuardArgs(
            run_id=self.run_id,
            action="activate",
            new=target.path,
            mode=self.opts.mode,
            old_generation=st.generation,
            old=st.current,
            confirm_timeout=self.opts.confirm_timeout if self.opts.rollback else 0,
            lock_dir=lock.LOCK_DIR,
        )
        try:
            how = self._step(rep, "arm", lambda: watchdog.arm(own, guard))
        except RemoteError as exc:  # nothing activated: the profile must not stay moved
            self._fail(
                rep, "arm", f"{exc}; {armed.restore_profile(own, guard.state_dir, st.generation)}"
            )
            raise HostFailed(rep.message) from None
        self.progress.step(host.name, "activate", f"guard: {how}")
        t = time.monotonic()
        rc: int | None = None
        activated_at: float | None = None
        lost = ""
        deadline = t + self.opts.activation_timeout
        while time.monotonic() < deadline:
            try:
                rc, activated_at, last = watchdog.wait_activated(own, guard.state_dir, 2)
            except (ConnectionLost, RemoteTimeout) as exc:
                lost = str(exc)
                self.drop(host)  # suspect: reconnect after the confirm if the host is fine
                break
            if last:
                self.progress.line(host.name, last)
            if rc is not None:
                break
            if self.cancel.is_set():
                break
        if (self.cancel.is_set() and rc is None) or (self.cancel.is_set() and rc == 0):
            rep.steps.append(StepResult("activate", rc == 0, "interrupted", time.monotonic() - t))
            msg = (
                f"interrupted during activation; the watchdog rolls back to generation {st.generation} "
                f"within {self.opts.confirm_timeout} s unless confirmed"
                if self.opts.rollback
                else "interrupted during activation (no watchdog: --no-rollback)"
            )
            raise self._fail(rep, "activate", msg, Outcome.INTERRUPTED)
        if rc is None and not lost:
            rep.steps.append(StepResult("activate", False, "timed out", time.monotonic() - t))
            self._fail(
                rep,
                "activate",
                f"switch-to-configuration {self.opts.mode} still running after {self.opts.activation_timeout:g} s",
            )
            if self.opts.rollback:
                watchdog.decide(
                    own, guard.state_dir, "rollback"
                )  # the guard rolls back once the activation ends
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
            what = (
                f"the rollback guard died before activating: {last or 'no output'}"
                if rc == watchdog.DEAD
                else f"switch-to-configuration {self.opts.mode} exited with status {rc}: {last or 'no output'}"
            )
            self._fail(rep, "activate", what)
            if self.opts.rollback:
                self.rollback_via_guard(host, own, guard, st, rep, decide=rc != watchdog.DEAD)
            raise HostFailed(rep.message)
        rep.steps.append(StepResult("activate", rc == 0, lost, time.monotonic() - t))
        self.confirm(host, guard, st, rep, lost)
        return activated_at

    def confirm(
        self, host: Host, guard: watchdog.GuardArgs, st: probe.HostState, rep: HostReport, lost: str
    ) -> None:
        """Disarm only after a NEW SSH connection succeeds."""
        self.progress.step(host.name, "confirm", "new SSH connection")
        t = time.monotonic()
        window = self.opts.confirm_timeout if self.opts.rollback else 10
        deadline = t + window
        last_err = lost
        while True:
            try:
                with Remote(
                    host, connect_timeout=min(5.0, max(1.0, deadline - time.monotonic()))
                ) as fresh:
                    extra = armed.extension_s(self.opts.check_timeout, self.opts.stability_window)
                    decision = (  # the guard stays armed through the checks (issue 15)
                        armed.reached(fresh, guard.state_dir, extra)
                        if self.opts.rollback
                        else "reached"
                    )
                break
            except RemoteError as exc:
                last_err = str(exc)
                if time.monotonic() >= deadline:
                    decision = ""
                    break
                time.sleep(0.5)
        if decision == "reached":
            rep.steps.append(StepResult("confirm", True, "", time.monotonic() - t))
            own = self._pool.get(host.name)
            if own is None or not own.alive:  # the working connection died during activation
                self.drop(host)
                self.connect(host)
            return
        rep.steps.append(StepResult("confirm", False, last_err, time.monotonic() - t))
        if not self.opts.rollback:
            raise self._fail(
                rep,
                "confirm",
                f"no new SSH connection after activation: {last_err} (--no-rollback: left as is)",
            )
        # The watchdog decides on the host; wait for the host to come back and tell us.
        if decision == "watchdog":
            why = (
                f"no confirmation reached the host within {self.opts.confirm_timeout} s of the "
                f"activation ({last_err or 'the host was unreachable'})"
            )
        else:
            why = f"no new SSH connection within {self.opts.confirm_timeout} s after activation: {last_err or 'refused'}"
        self._fail(rep, "confirm", why)
        self.await_host_rollback(host, guard, st, rep)
        raise HostFailed(rep.message)

    def await_host_rollback(
        self, host: Host, guard: watchdog.GuardArgs, st: probe.HostState, rep: HostReport
    ) -> None:
        self.progress.step(host.name, "rollback", "waiting for the host's watchdog")
        deadline = time.monotonic() + self.opts.confirm_timeout + self.opts.check_timeout + 60
        # A new config that broke sshd leaves the working session up: ask through it.
        own: Remote | None = self._pool.get(host.name)
        if own is not None and own.alive:
            try:
                own.run(["true"], timeout=5, what="reuse the working connection")
            except RemoteError:
                own = None
        else:
            own = None
        if own is None:
            self.drop(host)
        while own is None and time.monotonic() < deadline:
            try:
                own = self.connect(host)
                break
            except RemoteError:
                time.sleep(1)
        if own is None:
            rep.message += "; the host did not come back (its watchdog rolls back by itself)"
            rep.outcome = Outcome.FAILED
            return
        decision = watchdog.decide(own, guard.state_dir, "rollback")
        result, _last = self._wait_rollback(own, guard.state_dir)
        rep.outcome = Outcome.ROLLED_BACK_BY_HOST if decision == "watchdog" else Outcome.ROLLED_BACK
        self.progress.note(
            host.name,
            f"{rep.outcome}: generation {st.generation} ({result or 'rollback still running'})",
        )
        self.recheck(host, own, st, rep, result)

    def _wait_rollback(self, own: Remote, state_dir: str) -> tuple[str | None, str]:
        deadline = time.monotonic() + self.opts.activation_timeout
        while time.monotonic() < deadline:
            result, last = watchdog.wait_rolled_back(own, state_dir, 2)
            if result is not None:
                return result, last
        return None, ""

    def rollback_via_guard(
        self,
        host: Host,
        own: Remote,
        guard: watchdog.GuardArgs,
        st: probe.HostState,
        rep: HostReport,
        *,
        decide: bool,
    ) -> None:
        """Roll back to the generation the host had: through the armed guard (`decide`)
        or a new guard run in rollback mode (after the watchdog was disarmed)."""
        self.progress.step(host.name, "rollback", f"to generation {st.generation}")
        if decide:
            decision = watchdog.decide(own, guard.state_dir, "rollback")
            state_dir = guard.state_dir
            by_host = decision == "watchdog"
        else:
            rb = watchdog.GuardArgs(
                run_id=self.run_id, action="rollback", new=guard.new, mode="switch",
                old_generation=st.generation, old=st.current, confirm_timeout=0, lock_dir=lock.LOCK_DIR,
            )  # fmt: skip
            watchdog.arm(own, rb)
            state_dir, by_host = rb.state_dir, False
        result, _last = self._wait_rollback(own, state_dir)
        if result is None or not result.startswith("0 "):
            rep.outcome = Outcome.FAILED
            rep.message += (
                f"; rollback to generation {st.generation} failed ({result or 'timed out'})"
            )
            self.progress.note(host.name, rep.message)
            return
        rep.outcome = Outcome.ROLLED_BACK_BY_HOST if by_host else Outcome.ROLLED_BACK
        self.recheck(host, own, st, rep, result)

    def recheck(
        self, host: Host, own: Remote, st: probe.HostState, rep: HostReport, result: str | None
    ) -> None:
        self.progress.step(host.name, "re-check", f"generation {st.generation}")
        now = probe.probe(own)
        rep.generation_after, rep.closure_after = now.generation, now.current
        results = checks.wait_healthy(
            host,
            self.inv,
            own,
            self.kube_for(host, own),
            timeout=self.opts.check_timeout,
            cancelled=self.cancel.is_set,
            fresh_since=_ended_at(result),
        )
        bad = checks.failures(results)
        rep.healthy_after_rollback = not bad and now.current == st.current
        state = (
            "healthy" if rep.healthy_after_rollback else "NOT healthy: " + "; ".join(map(str, bad))
        )
        rep.message += f"; back on generation {now.generation}, {state}"
        self.progress.note(host.name, f"{rep.outcome}; generation {now.generation}, {state}")

    # ------------------------------------------------------------------ checks

    def verify(
        self,
        host: Host,
        own: Remote,
        st: probe.HostState,
        rep: HostReport,
        fresh_since: float | None,
    ) -> None:
        self.progress.step(host.name, "checks")
        t = time.monotonic()

        def show(results: list[CheckResult]) -> None:
            bad = checks.failures(results)
            self.progress.line(host.name, "; ".join(map(str, bad)) if bad else "all checks pass")

        results = checks.wait_healthy(
            host,
            self.inv,
            own,
            self.kube_for(host, own),
            timeout=self.opts.check_timeout,
            cancelled=self.cancel.is_set,
            on_poll=show,
            fresh_since=fresh_since,
        )
        bad = checks.failures(results)
        if not bad:  # still armed: k3s must stay up and the node Ready for a while
            self.progress.step(host.name, "stability", f"{self.opts.stability_window:g} s")
            bad = stability.hold(host, self.inv, own, self.kube_for(host, own), self.opts.stability_window,
                                 on_poll=lambda text: self.progress.line(host.name, text))  # fmt: skip
        rep.steps.append(
            StepResult("checks", not bad, "; ".join(map(str, bad)), time.monotonic() - t)
        )
        expected = rep.closure_after
        try:
            now = probe.probe(own)
        except RemoteError as exc:  # cut during the checks: the armed guard rolls it back
            cause = str(exc).removeprefix(f"{host.name}: ").removeprefix("preflight: ")
            self._fail(rep, "checks", f"host unreachable during the checks: {cause}")
            if self.opts.rollback:
                self.await_host_rollback(host, watchdog.GuardArgs(run_id=self.run_id, action="activate", new="", mode=self.opts.mode, old_generation=st.generation, old=st.current, confirm_timeout=0, lock_dir=lock.LOCK_DIR), st, rep)  # fmt: skip
            raise HostFailed(rep.message) from None
        rep.generation_after, rep.closure_after = now.generation, now.current
        if not bad and now.current != expected:  # healthy is not enough: this deploy's closure
            bad = [CheckResult("closure", False, f"running {now.current}, deployed {expected}")]
        guard_dir = f"{lock.RUNS_DIR}/{self.run_id}-activate"
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
            return
        if self.cancel.is_set():  # not verified: roll back rather than leave it unverified
            bad = [CheckResult(r.name, False, f"interrupted: {r.detail}") for r in bad]
        rep.failed_checks = bad
        self._fail(rep, "checks", "; ".join(map(str, bad)))
        if self.opts.rollback:
            guard = watchdog.GuardArgs(
                run_id=self.run_id, action="activate", new=now.current, mode=self.opts.mode,
                old_generation=st.generation, old=st.current, confirm_timeout=0, lock_dir=lock.LOCK_DIR,
            )  # fmt: skip
            self.rollback_via_guard(host, own, guard, st, rep, decide=True)  # still armed
        raise HostFailed(rep.message)
