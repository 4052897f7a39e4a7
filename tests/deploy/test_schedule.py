"""The deploy's schedule: at most --max-parallel hosts activated and not yet verified,
copies of the next hosts prepared while earlier ones are in their checks, servers
strictly before agents, and after a failure no further activation (docs/deploy.md
"Order"). `order.Schedule` on its own, then whole runs of `Engine.run` on the recording
stand-in transport (tests/transport_fake.py) with a timeline of what each host did."""

from __future__ import annotations

import io
import random
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hydradeploy.deploy import order
from hydradeploy.deploy.closure import CopyStats
from hydradeploy.deploy.engine import Engine, Options
from hydradeploy.deploy.models import CheckResult, Goal, Outcome
from hydradeploy.deploy.progress import Progress
from hydradeploy.inventory import Host, load_inventory
from hydradeploy.transport.pool import Pool
from transport_fake import FakeNet

# ------------------------------------------------------------------ order.Schedule


def _h(name: str, role: str = "agent", init: bool = False) -> Host:
    return Host(name=name, address="198.18.0.1", role=role, cluster_init=init)


def _simulate(hosts: list[Host], window: int, seed: int) -> list[tuple[str, int, int]]:
    """Drive a Schedule with hosts finishing in a random order; returns, after each
    event, (event, activated-and-unverified count, preparing+prepared count)."""
    rnd = random.Random(seed)
    sched = order.Schedule(order.waves(hosts, window), ahead=window)
    seen: list[tuple[str, int, int]] = []
    preparing: list[str] = []
    active: list[str] = []
    activated_in_stage: dict[int, list[str]] = {}
    while not sched.finished():
        if sched.stage_done():
            sched.advance()
            continue
        preparing += sched.to_prepare()
        for n in sched.to_activate():
            active.append(n)
            activated_in_stage.setdefault(sched.wave_of[n], []).append(n)
        if preparing and (not active or rnd.random() < 0.5):
            n = preparing.pop(rnd.randrange(len(preparing)))
            sched.ready(n)
            seen.append((f"ready {n}", sched.count(order.ACTIVE),
                         sched.count(order.PREPARING, order.READY)))  # fmt: skip
        elif active:
            n = active.pop(rnd.randrange(len(active)))
            sched.release(n)
            sched.done(n)
            seen.append((f"done {n}", sched.count(order.ACTIVE),
                         sched.count(order.PREPARING, order.READY)))  # fmt: skip
        # a stage's hosts activate only once every earlier stage is done
        for i in range(sched.stage):
            assert all(sched.state[h.name] == order.DONE for h in sched.waves[i].hosts)
    assert set(sched.state.values()) == {order.DONE}
    return seen


def test_the_schedule_never_exceeds_the_window_nor_prepares_too_far_ahead():
    hosts = [_h("s1", "server", True), _h("s2", "server")] + [
        _h(f"a{i}") for i in range(11)
    ]
    tops = []
    for seed in range(30):  # hosts preparing and finishing in random orders
        seen = _simulate(hosts, 3, seed)
        tops.append(max(active for _e, active, _p in seen))
        assert max(ahead for _e, _a, ahead in seen) <= 3, seed
    assert max(tops) == 3  # the window is used, and never passed


def test_servers_hold_a_window_of_one_and_agents_wait_for_every_server():
    sched = order.Schedule(
        order.waves(
            [_h("a1"), _h("s1", "server", True), _h("s2", "server"), _h("a2")], 4
        ),
        ahead=4,
    )
    sched.advance()  # stage 1: the cluster-init server
    assert sched.to_prepare() == ["s1", "s2", "a1", "a2"]  # nothing changes: all ahead
    for n in ("a1", "a2", "s2", "s1"):
        sched.ready(n)
    assert sched.to_activate() == ["s1"]  # agents and the next server wait
    sched.release("s1")
    assert (
        sched.to_activate() == [] and not sched.stage_done()
    )  # s1 still writes its record
    sched.done("s1")
    assert sched.stage_done()
    sched.advance()
    assert sched.to_activate() == ["s2"]
    sched.release("s2"), sched.done("s2"), sched.advance()
    assert sched.to_activate() == ["a1", "a2"]


def test_a_stop_releases_prepared_hosts_and_starts_nothing_more():
    sched = order.Schedule(order.waves([_h(f"a{i}") for i in range(5)], 2), ahead=2)
    sched.advance()
    assert sched.to_prepare() == ["a0", "a1"]
    sched.ready("a0"), sched.ready("a1")
    assert sched.to_activate() == ["a0", "a1"]
    assert sched.to_prepare() == ["a2", "a3"]
    sched.ready("a2")
    assert sched.stop("not started: a0 failed at checks") == ["a2"]
    assert sched.to_prepare() == [] and sched.to_activate() == []
    assert sched.stop("later reason") == ["a2"] and sched.stopped.endswith(
        "a0 failed at checks"
    )
    for n in ("a0", "a1", "a2", "a3"):
        sched.done(n)
    assert sched.finished() and sched.state["a4"] == order.QUEUED


# ------------------------------------------------------------------ whole runs


INVENTORY = """
[cluster]
name = "sched"
api_endpoint = "https://198.18.0.1:6443"
cluster_cidr = "10.42.0.0/16"
service_cidr = "10.43.0.0/16"
flannel_backend = "vxlan"
admin_user = "hydra"
admin_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPLACEHOLDERREPLACEWITHYOURADMINKEY0000 a@b"]

[ssh]
user = "root"

[hosts.srv]
address = "198.18.0.1"
role = "server"
cluster_init = true
"""

PROBE_OUT = (
    "kind=nixos\ncurrent=/nix/store/{h}-old\ncurrent_time=100\nprofile_link=system-4-link\n"
    "profile_path=/nix/store/{h}-old\nstore_free_kb=1000000\nk3s=active\nnow=200\n"
)
NEW = "/nix/store/" + "b" * 32 + "-new"


class Timeline:
    """What each host did and when (monotonic seconds), recorded from the commands it
    received and from the stand-ins of the copy and the checks."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()

    def add(self, host: str, what: str) -> None:
        with self._lock:
            self.events.append((time.monotonic(), host, what))

    def first(self, host: str, what: str) -> float:
        return min(t for t, h, w in self.events if h == host and w == what)

    def last(self, host: str, what: str) -> float:
        return max(t for t, h, w in self.events if h == host and w == what)

    def has(self, host: str, what: str) -> bool:
        return any(h == host and w == what for _t, h, w in self.events)

    def intervals(self, start: str, end: str) -> dict[str, tuple[float, float]]:
        hosts = {h for _t, h, w in self.events if w == start}
        return {h: (self.first(h, start), self.last(h, end)) for h in hosts}


def most_at_once(spans: dict[str, tuple[float, float]]) -> int:
    edges = sorted(
        [(a, 1) for a, _b in spans.values()] + [(b, -1) for _a, b in spans.values()]
    )
    now = top = 0
    for _t, d in edges:  # an end at the same instant as a start counts first (-1 < 1)
        now += d
        top = max(top, now)
    return top


class Fleet:
    """Agents w1…wN on the stand-in transport; the copy and the join checks take the
    given seconds per host, and `bad` hosts fail their checks."""

    def __init__(self, tmp: Path, monkeypatch, n: int, check_s: dict[str, float],
                 copy_s: float | dict[str, float] = 0.15, bad: frozenset[str] = frozenset(),
                 on_checks: dict[str, object] | None = None) -> None:  # fmt: skip
        from hydradeploy.deploy import engine as engine_mod

        text = INVENTORY + "".join(
            f'\n[hosts.w{i}]\naddress = "198.18.0.{10 + i}"\nrole = "agent"\n'
            for i in range(1, n + 1)
        )
        (tmp / "inventory.toml").write_text(text)
        self.inv = load_inventory(tmp / "inventory.toml")
        self.timeline = tl = Timeline()
        self.net = net = FakeNet()
        for h in self.inv.hosts:
            net.reply(h, "echo kind=nixos", PROBE_OUT.format(h="a" * 32))
            net.reply(h, "if mkdir", "acquired\n")
            net.reply(h, "guard.sh", "systemd hydradeploy-guard-x\n")
            net.reply(h, 'ln -s "$want"', "confirmed\n")
            net.reply(h, "reached.tmp", "reached\n")
            net.reply(h, "-activate activated ", "activated=0 1000\n")
            net.reply(
                h,
                "-activate rolledback ",
                "activated=0 1000\nrolledback=0 guard 1001\n",
            )
        real_run = type(net.connect(self.inv.host("srv"))).run
        net.opened.clear()

        def run(conn, argv, **kw):  # type: ignore[no-untyped-def]
            res = real_run(conn, argv, **kw)
            line = net.calls[-1][1]
            what = (
                "lock" if "if mkdir" in line  # it looks for guards of earlier runs
                else "arm" if "guard.sh" in line
                else "unlock" if 'rm -rf "$lock"' in line
                else "cmd"
            )  # fmt: skip
            tl.add(conn.name, what)
            return res

        monkeypatch.setattr(type(net.connect(self.inv.host("srv"))), "run", run)
        net.opened.clear()

        def copy_closure(remote, path, **kw):  # type: ignore[no-untyped-def]
            tl.add(remote.name, "copy-start")
            took = (
                copy_s if isinstance(copy_s, float) else copy_s.get(remote.name, 0.15)
            )
            deadline = time.monotonic() + took
            while time.monotonic() < deadline:
                if kw["cancelled"]():
                    tl.add(remote.name, "copy-cut")
                    raise engine_mod.closure.ClosureError(
                        f"{remote.name}: nix copy interrupted"
                    )
                time.sleep(0.01)
            tl.add(remote.name, "copy-end")
            return CopyStats(3, 2, 4096, 1, took)

        def wait_healthy(host, *a, **kw):  # type: ignore[no-untyped-def]
            tl.add(host.name, "checks-start")
            hook = (on_checks or {}).get(host.name)
            if callable(hook):
                hook()
            time.sleep(check_s.get(host.name, 0.05))
            tl.add(host.name, "checks-end")
            if host.name in bad and not tl.has(host.name, "rolled-back"):
                return [CheckResult("node-ready", False, "NotReady")]
            return []

        real_probe = engine_mod.probe.probe

        def probe(conn, *a, **k):  # type: ignore[no-untyped-def]
            st = real_probe(conn, *a, **k)
            lines = net.lines(conn.name)
            if any("-activate rolledback " in ln for ln in lines):
                tl.add(conn.name, "rolled-back")
            elif any("-activate activated " in ln for ln in lines):
                st = replace(st, current=NEW, profile_path=NEW)
            return st

        monkeypatch.setattr(engine_mod.closure, "copy_closure", copy_closure)
        monkeypatch.setattr(engine_mod.closure, "local_requisites", lambda p: [p])
        monkeypatch.setattr(engine_mod.closure, "remote_requisites", lambda r, p: [p])
        monkeypatch.setattr(engine_mod.checks, "wait_healthy", wait_healthy)
        monkeypatch.setattr(engine_mod.probe, "probe", probe)

    def deploy(self, hosts: list[str], max_parallel: int, keep_going: bool = False):  # type: ignore[no-untyped-def]
        opts = Options(
            goal=Goal.SWITCH, max_parallel=max_parallel, keep_going=keep_going,
            check_timeout=5, stability_window=0, closures={h: NEW for h in hosts},
        )  # fmt: skip
        progress = Progress(hosts, stream=io.StringIO())
        engine = Engine(
            self.inv, opts, progress, "run1", Pool(self.inv, self.net.connect)
        )
        self.engine = engine
        reps = engine.run([self.inv.host(h) for h in hosts])
        self.log = progress.stream.getvalue()  # type: ignore[attr-defined]
        return {r.host: r for r in reps}

    def activated(self) -> dict[str, tuple[float, float]]:
        """Per host: from arming its guard to its last command before the lock's release
        (the decision `confirmed`, or the re-check after a rollback)."""
        spans = {}
        for h, (start, _end) in self.timeline.intervals("arm", "arm").items():
            before_unlock = [
                t for t, hh, w in self.timeline.events
                if hh == h and w in ("cmd", "checks-end", "arm") and t < self.timeline.last(h, "unlock")
            ]  # fmt: skip
            spans[h] = (start, max(before_unlock))
        return spans


def test_never_more_than_max_parallel_hosts_activated_and_not_yet_verified(
    tmp_path, monkeypatch
):
    # uneven checks: a sliding window lets w4 in as soon as w2 is verified, while w1 is
    # still in its checks (waves would hold w4 until w1 is done)
    checks = {
        "w1": 0.9,
        "w2": 0.1,
        "w3": 0.5,
        "w4": 0.2,
        "w5": 0.6,
        "w6": 0.1,
        "w7": 0.3,
    }
    fleet = Fleet(tmp_path, monkeypatch, 7, checks)
    reps = fleet.deploy([f"w{i}" for i in range(1, 8)], max_parallel=3)
    assert {h: r.outcome for h, r in reps.items()} == dict.fromkeys(
        reps, Outcome.DEPLOYED
    )
    spans = fleet.activated()
    assert len(spans) == 7
    assert most_at_once(spans) == 3  # used to the full, never passed
    tl = fleet.timeline
    assert tl.first("w4", "arm") < spans["w1"][1]  # a slot freed, not a wave ended
    assert "at most 3 activated and not yet verified at once" in fleet.log
    for h, rep in reps.items():  # each host locked before its copy and released after
        assert tl.first(h, "lock") < tl.first(h, "copy-start") < tl.first(h, "arm")
        assert [s.step for s in rep.steps][:6] == [
            "connect", "preflight", "lock", "closure", "copy-stats", "copy",
        ]  # fmt: skip
        assert "wait" in [s.step for s in rep.steps]


def test_copies_for_the_next_hosts_overlap_the_checks_of_earlier_ones(
    tmp_path, monkeypatch
):
    from hydradeploy.deploy import engine as engine_mod

    monkeypatch.setattr(engine_mod, "REFRESH_AFTER_S", 0.3)
    checks = dict.fromkeys(("w1", "w2"), 0.8)
    fleet = Fleet(tmp_path, monkeypatch, 5, checks, copy_s=0.2)
    reps = fleet.deploy([f"w{i}" for i in range(1, 6)], max_parallel=2)
    assert all(r.outcome is Outcome.DEPLOYED for r in reps.values())
    tl = fleet.timeline
    first_checks_end = min(tl.last("w1", "checks-end"), tl.last("w2", "checks-end"))
    for h in ("w3", "w4"):  # copied while w1 and w2 were in their checks …
        assert (
            tl.first("w1", "checks-start") < tl.last(h, "copy-end") < first_checks_end
        )
        assert (
            tl.first(h, "arm") >= first_checks_end
        )  # … but activated only after a slot freed
    # the copies never split the uplink more than --max-parallel ways
    assert most_at_once(tl.intervals("copy-start", "copy-end")) <= 2
    assert most_at_once(fleet.activated()) == 2
    # a host prepared well ahead is probed again before it activates
    waited = {
        h: next(s for s in r.steps if s.step == "wait").seconds for h, r in reps.items()
    }
    assert waited["w3"] > 0.3
    assert [s.step for s in reps["w3"].steps].count("preflight") == 2


def test_a_failure_stops_further_activations_and_prepared_hosts_are_not_started(
    tmp_path, monkeypatch
):
    checks = {"w1": 0.7, "w2": 1.2}
    fleet = Fleet(tmp_path, monkeypatch, 6, checks, bad=frozenset({"w1"}))
    reps = fleet.deploy([f"w{i}" for i in range(1, 7)], max_parallel=2)
    tl = fleet.timeline
    assert (
        reps["w1"].outcome is Outcome.ROLLED_BACK and reps["w1"].failed_step == "checks"
    )
    assert (
        reps["w2"].outcome is Outcome.DEPLOYED
    )  # already activated: finished verifying
    for h in ("w3", "w4"):  # prepared while w1 and w2 were checked, never activated
        rep = reps[h]
        assert tl.has(h, "copy-start") and not tl.has(h, "arm"), h
        assert rep.outcome is Outcome.SKIPPED and rep.failed_step is None
        assert rep.message.startswith("not started: w1 failed at checks; only prepared")
        assert "harmless" in rep.message
        assert tl.has(h, "unlock")  # its lock released
        assert any(
            "deploys.jsonl" in ln for ln in fleet.net.lines(h)
        )  # its record written
    for h in ("w5", "w6"):  # never reached: nothing ran on them
        assert reps[h].outcome is Outcome.SKIPPED
        assert reps[h].message == "not started: w1 failed at checks"
        assert fleet.net.lines(h) == []
    assert max(tl.first(h, "arm") for h in ("w1", "w2")) < tl.last("w1", "checks-end")


def test_a_failure_cuts_a_copy_that_is_still_running(tmp_path, monkeypatch):
    copies = {"w1": 0.1, "w2": 0.1, "w3": 3.0}
    fleet = Fleet(
        tmp_path, monkeypatch, 3, {"w1": 0.2}, copy_s=copies, bad=frozenset({"w1"})
    )
    reps = fleet.deploy(["w1", "w2", "w3"], max_parallel=2)
    assert reps["w1"].outcome is Outcome.ROLLED_BACK
    w3 = reps["w3"]
    assert w3.outcome is Outcome.SKIPPED and "w1 failed at checks" in w3.message, (
        w3.message
    )
    assert fleet.timeline.has("w3", "copy-cut") and not fleet.timeline.has("w3", "arm")
    assert w3.failed_step is None and fleet.timeline.has("w3", "unlock")
    assert (
        fleet.timeline.last("w3", "copy-cut")
        < fleet.timeline.first("w3", "copy-start") + 2
    )


def test_keep_going_activates_the_others_after_a_failure(tmp_path, monkeypatch):
    checks = {"w1": 0.3, "w2": 0.6}
    fleet = Fleet(tmp_path, monkeypatch, 5, checks, bad=frozenset({"w1"}))
    reps = fleet.deploy([f"w{i}" for i in range(1, 6)], max_parallel=2, keep_going=True)
    assert reps["w1"].outcome is Outcome.ROLLED_BACK
    assert [reps[h].outcome for h in ("w2", "w3", "w4", "w5")] == [Outcome.DEPLOYED] * 4
    assert most_at_once(fleet.activated()) == 2  # the rollback held its slot too


def test_servers_first_and_alone_agents_prepared_meanwhile(tmp_path, monkeypatch):
    fleet = Fleet(tmp_path, monkeypatch, 3, {"srv": 0.6})
    reps = fleet.deploy(["w1", "srv", "w2", "w3"], max_parallel=2)
    assert all(r.outcome is Outcome.DEPLOYED for r in reps.values())
    tl = fleet.timeline
    srv_done = fleet.activated()["srv"][1]
    for h in ("w1", "w2"):
        assert tl.last(h, "copy-end") < tl.last(
            "srv", "checks-end"
        )  # prepared meanwhile
        assert tl.first(h, "arm") > srv_done  # activated after the server
    assert most_at_once(fleet.activated()) == 2


def test_ctrl_c_lets_activated_hosts_finish_and_prepared_ones_stay_untouched(
    tmp_path, monkeypatch
):
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:  # Ctrl-C while w1 is in its checks, w3 and w4 prepared
        time.sleep(0.5)
        signal.pthread_kill(main, signal.SIGINT)

    fleet = Fleet(
        tmp_path, monkeypatch, 5, {"w1": 0.3, "w2": 1.0}, on_checks={"w1": interrupt}
    )
    with pytest.raises(KeyboardInterrupt):
        fleet.deploy([f"w{i}" for i in range(1, 6)], max_parallel=2)
    reps = {r.host: r for r in fleet.engine.last_reports}
    tl = fleet.timeline
    assert reps["w1"].outcome is Outcome.DEPLOYED  # its checks passed: it finished
    for h in ("w3", "w4"):  # prepared: nothing activated, the lock released
        assert reps[h].outcome is Outcome.INTERRUPTED and not tl.has(h, "arm")
        assert "nothing changed" in reps[h].message and tl.has(h, "unlock")
    assert reps["w5"].outcome is Outcome.SKIPPED
    assert reps["w5"].message == "not started: interrupted"
    assert not [t for t in threading.enumerate() if t.name.startswith("deploy")]


def test_only_one_host_when_max_parallel_is_one(tmp_path, monkeypatch):
    fleet = Fleet(tmp_path, monkeypatch, 3, {"w1": 0.2, "w2": 0.2, "w3": 0.2})
    reps = fleet.deploy(["w1", "w2", "w3"], max_parallel=1)
    assert all(r.outcome is Outcome.DEPLOYED for r in reps.values())
    assert most_at_once(fleet.activated()) == 1
    assert most_at_once(fleet.timeline.intervals("copy-start", "copy-end")) == 1


def test_a_host_that_changed_while_it_waited_is_not_activated(tmp_path, monkeypatch):
    from hydradeploy.transport import Result
    from transport_fake import Reply

    fleet = Fleet(tmp_path, monkeypatch, 2, {"w1": 2.5})
    other = PROBE_OUT.format(h="c" * 32).replace("system-4-link", "system-5-link")

    def change_w2() -> None:  # someone switches w2 by hand after its first preflight
        time.sleep(0.8)
        fleet.net.replies["w2"].insert(
            0, Reply("echo kind=nixos", Result(0, other, ""))
        )

    threading.Thread(target=change_w2, daemon=True).start()
    reps = fleet.deploy(["w1", "w2"], max_parallel=1)
    assert reps["w1"].outcome is Outcome.DEPLOYED
    w2 = reps["w2"]
    assert w2.outcome is Outcome.FAILED and w2.failed_step == "preflight", w2.message
    assert "changed while waiting for a slot" in w2.message
    assert not fleet.timeline.has("w2", "arm") and fleet.timeline.has("w2", "unlock")


def test_plan_shows_the_agents_window_as_the_deploy_runs_it(capsys):
    from hydradeploy.deploy.planning import render_plan

    hosts = [_h("s1", "server", True)] + [_h(f"a{i}") for i in range(1, 4)]
    plan = order.waves(hosts, 2)
    result = {
        "waves": [
            {"wave": w.index, "kind": w.kind, "hosts": w.names, "window": w.window}
            for w in plan
        ],
        "hosts": [
            {
                "host": h.name,
                "role": h.role,
                "generation": 4,
                "closure": None,
                "closure_source": "build-local",
                "summary": "-",
            }
            for h in hosts
        ],
    }
    render_plan(result)
    out, err = capsys.readouterr()
    rows = [ln.split("\t") for ln in out.splitlines()]
    assert [r[:2] for r in rows[1:]] == [
        ["1 (cluster-init)", "s1"],
        ["2 (agents, 2 at once)", "a1"],
        ["2 (agents, 2 at once)", "a2"],
        ["2 (agents, 2 at once)", "a3"],
    ]
    assert "at most 2 agents activated and not yet verified at once" in err


def test_agents_are_prepared_while_the_server_gate_runs_and_activate_after_it(
    tmp_path, monkeypatch
):
    fleet = Fleet(
        tmp_path, monkeypatch, 2, {"srv": 0.6}
    )  # srv is not deployed: the gate
    reps = fleet.deploy(["w1", "w2"], max_parallel=2)
    assert all(r.outcome is Outcome.DEPLOYED for r in reps.values())
    tl = fleet.timeline
    gate_end = tl.first("srv", "checks-end")
    for h in ("w1", "w2"):
        assert tl.first(h, "copy-start") < gate_end < tl.first(h, "arm")


def test_a_failing_server_gate_starts_no_agent(tmp_path, monkeypatch):
    fleet = Fleet(tmp_path, monkeypatch, 2, {"srv": 0.4}, bad=frozenset({"srv"}))
    reps = fleet.deploy(["w1", "w2"], max_parallel=2)
    for h in ("w1", "w2"):
        assert reps[h].outcome is Outcome.SKIPPED and not fleet.timeline.has(h, "arm")
        assert reps[h].message.startswith(
            "not started: server srv is failing its checks"
        )
        assert fleet.timeline.has(h, "unlock")
