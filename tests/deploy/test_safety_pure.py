"""Issue 15's pure parts: signal handling, lock takeover rules, verified generations,
the stability window's decision, preflight refusals."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from hydradeploy.deploy import (
    armed,
    checks,
    lock,
    preflight,
    probe,
    signals,
    stability,
    verified,
)
from hydradeploy.deploy.models import CheckResult, Generation
from hydradeploy.inventory import Host


def test_only_the_first_signal_interrupts_later_ones_are_counted():
    said: list[int] = []
    with signals.Interrupts(said.append) as intr:
        with pytest.raises(KeyboardInterrupt), intr.raising():
            os.kill(os.getpid(), signal.SIGTERM)
        with intr.raising():  # still stopping: a second and third one never raise
            os.kill(os.getpid(), signal.SIGHUP)
            os.kill(os.getpid(), signal.SIGINT)
        assert intr.count == 3 and said == [signal.SIGHUP, signal.SIGINT]
        exc = intr.exit()
    assert isinstance(exc, SystemExit) and exc.code == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_signal_before_the_run_interrupts_it_at_its_start():
    with signals.Interrupts() as intr:
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt), intr.raising():
            pass
        assert isinstance(intr.exit(), KeyboardInterrupt)


def test_sighup_points_terminal_streams_at_dev_null_and_leaves_pipes():
    master, slave = os.openpty()
    r, w = os.pipe()
    try:
        signals.detach_terminal((slave, w))
        assert not os.isatty(slave)  # now /dev/null: writes succeed, nobody sees them
        assert os.write(slave, b"x") == 1
        os.write(w, b"kept")
        assert os.read(r, 4) == b"kept"
    finally:
        for fd in (master, slave, r, w):
            os.close(fd)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _holder(**kw: object) -> lock.Holder:
    base: dict[str, object] = {
        "text": "root@box pid 1 …", "run": "R", "machine": "m" * 32, "pid": _dead_pid(),
        "deadline": 2000, "now": 1000, "guard_running": False,
    }  # fmt: skip
    base.update(kw)
    return lock.Holder(**base)  # type: ignore[arg-type]


def test_a_lock_is_taken_over_only_when_its_holder_is_provably_gone():
    me = "m" * 32
    assert "on this machine is gone" in lock.gone_because(_holder(), me)
    # same user@hostname, another machine: alive as far as we can know
    assert lock.gone_because(_holder(machine="x" * 32), me) == ""
    assert lock.gone_because(_holder(machine=""), me) == ""  # an old-format lock
    assert lock.gone_because(_holder(pid=os.getpid()), me) == ""
    assert "deadline passed" in lock.gone_because(
        _holder(machine="x" * 32, now=3000), me
    )
    # a guard of its run still runs: never, whatever else
    assert lock.gone_because(_holder(guard_running=True), me) == ""
    assert (
        lock.gone_because(_holder(machine="x", now=3000, guard_running=True), me) == ""
    )


def test_holder_parse():
    h = lock.Holder.parse(["holder=u@h pid 5 since T (run R)", "run=R", "machine=abc", "pid=5",
                           "deadline=20", "now=10", "guard=yes"])  # fmt: skip
    assert (h.text, h.run, h.machine, h.pid, h.deadline, h.now, h.guard_running) == (
        "u@h pid 5 since T (run R)", "R", "abc", 5, 20, 10, True,
    )  # fmt: skip


def test_machine_identity_never_reveals_the_machine_id(tmp_path: Path):
    f = tmp_path / "machine-id"
    f.write_text("0123456789abcdef0123456789abcdef\n")
    ident = lock.machine_identity((f,))
    assert len(ident) == 32 and "0123456789abcdef" not in ident
    assert ident == lock.machine_identity((tmp_path / "absent", f))
    assert lock.machine_identity((tmp_path / "absent",)).startswith("hostname:")


def _gens(*numbers: int, current: int) -> list[Generation]:
    return [Generation(n, "2026-01-01 00:00:00", n == current) for n in numbers]


def test_rollback_target_is_the_newest_earlier_verified_generation():
    assert verified.rollback_target(_gens(1, 2, 3, 4, current=4), {1, 2, 4}) == 2
    assert verified.rollback_target(_gens(1, 2, 3, 4, current=4), {1, 4}) == 1
    # a later, failed generation above the current one is never a candidate
    assert verified.rollback_target(_gens(1, 2, 3, current=2), {1, 3}) == 1
    why = verified.rollback_target(_gens(1, 2, 3, current=3), {3})
    assert isinstance(why, str) and "name one with --to" in why and "1, 2" in why
    assert verified.rollback_target(_gens(1, current=1), {1}) == (
        "no generation before the current one (1)"
    )


def test_preflight_refuses_a_full_store():
    st = probe.parse("kind=nixos\nstore_free_kb=1024\n")
    assert preflight.refusal("w1", st).startswith(
        "w1: /nix/store has 1 MiB free, at least 64 MiB"
    )
    assert (
        preflight.refusal("w1", probe.parse("kind=nixos\nstore_free_kb=999999\n")) == ""
    )
    assert (
        preflight.refusal("w1", probe.parse("kind=nixos\n")) == ""
    )  # unknown: copy decides


def test_the_guard_waits_for_the_checks_and_the_window_once_reached():
    assert armed.extension_s(120, 10) == 120 + 10 + armed.MARGIN_S
    assert armed.extension_s(0.5, 0) == 1 + armed.MARGIN_S


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def _hold(monkeypatch, identities, failing_at=None):
    clock = _Clock()
    seen = iter(identities)
    monkeypatch.setattr(stability, "k3s_identity", lambda own: next(seen))
    monkeypatch.setattr(checks, "collect", lambda host, own, kube: checks.Facts())

    def evaluate(host, inv, facts, fresh_since=None):
        bad = failing_at is not None and clock.t >= failing_at
        return [
            CheckResult("node-ready", not bad, "node w1 Ready=False" if bad else "")
        ]

    monkeypatch.setattr(checks, "evaluate", evaluate)
    host = Host(name="w1", address="198.18.0.1", role="agent")
    return stability.hold(host, None, None, None, 5, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]


def test_stability_window_passes_when_nothing_changes(monkeypatch):
    assert _hold(monkeypatch, ["restarts=0 pid=7"] * 20) == []


def test_stability_window_fails_on_a_k3s_restart(monkeypatch):
    (bad,) = _hold(monkeypatch, ["restarts=0 pid=7"] * 3 + ["restarts=1 pid=9"] * 20)
    assert bad.name == "stability" and "k3s restarted within 5 s" in bad.detail
    assert "restarts=0 pid=7 → restarts=1 pid=9" in bad.detail


def test_stability_window_fails_when_the_node_goes_not_ready(monkeypatch):
    (bad,) = _hold(monkeypatch, ["restarts=0 pid=7"] * 20, failing_at=2)
    assert bad.name == "node-ready" and "stability window" in bad.detail


def test_the_guard_is_told_how_to_set_the_profile_and_the_engine_never_sets_it_first():
    """Issue 15: the profile moves inside the guard (no round trip before it)."""
    from hydradeploy.deploy import activate, watchdog
    from hydradeploy.deploy.models import Closure, Goal

    new = Closure("/nix/store/" + "b" * 32 + "-new", "prebuilt")
    old_gen = Closure("/nix/store/" + "a" * 32 + "-old", "generation 3", generation=3)
    assert activate.guard_profile_step(new, Goal.SWITCH) == "set"
    assert activate.guard_profile_step(old_gen, Goal.SWITCH) == "3"  # rollback HOST
    assert (
        activate.guard_profile_step(new, Goal.TEST) == "none"
    )  # test keeps the profile
    args = watchdog.GuardArgs(run_id="r", action="activate", new=new.path, mode="switch",
                              old_generation=2, old=old_gen.path, confirm_timeout=30,
                              lock_dir="/l", set_profile="set")  # fmt: skip
    assert args.argv()[-1] == "set" and len(args.argv()) == 11
    # the guard script reads it as $11 and sets the profile before switch-to-configuration
    guard = watchdog.GUARD
    assert "setp=${2:-none}" in guard
    assert guard.index('nix-env -p "$profile" --set "$new"') < guard.index(
        '"$new/bin/switch-to-configuration" "$mode"'
    )


def test_the_pause_hook_stops_only_at_the_named_point_and_ends_on_cancel(
    monkeypatch, capsys
):
    import time

    monkeypatch.setenv(signals.PAUSE_ENV, "w1:armed")
    monkeypatch.setenv(signals.PAUSE_SECONDS_ENV, "30")
    t = time.monotonic()
    signals.pause_point("w2", "armed")
    signals.pause_point("w1", "arm")
    assert capsys.readouterr().err == "" and time.monotonic() - t < 1
    signals.pause_point("w1", "armed", cancelled=lambda: time.monotonic() - t > 0.3)
    assert "paused at w1:armed" in capsys.readouterr().err
    assert 0.3 <= time.monotonic() - t < 5  # ended by the cancel, not the 30 s
    monkeypatch.delenv(signals.PAUSE_ENV)
    signals.pause_point("w1", "armed")  # unset: nothing
    assert capsys.readouterr().err == ""
