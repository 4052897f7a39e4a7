"""Issue 15 in the lab: locks, signals, verified generations, the guard kept armed
through the checks, diagnosis. One small lab (a server and an agent) for the module;
every test leaves both hosts on a healthy generation."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hydradeploy.deploy import lock
from hydradeploy.lab import HostSpec

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PROFILE = "/nix/var/nix/profiles/system"
LOCK = "/var/lib/hydradeploy/lock"
# a short stability window: the path runs, the suite stays within CI\'s time
FAST = ["--confirm-timeout", "5", "--check-timeout", "20", "--stability-window", "2"]


@pytest.fixture(scope="module")
def lab(lab_factory):
    return lab_factory(
        [HostSpec("srv", "server"), HostSpec("w1", "agent", gpus={"nvidia": 1})]
    )


@pytest.fixture(scope="module")
def state_home(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


def argv(lab, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hydradeploy",
        "--inventory",
        str(lab.inventory_path),
        *args,
    ]


@pytest.fixture
def hd(lab, state_home):
    def run(*args: str, timeout: float = 240):
        env = {**os.environ, "XDG_STATE_HOME": str(state_home)}
        res = subprocess.run(argv(lab, *args), capture_output=True, text=True, timeout=timeout,
                             env=env, check=False)  # fmt: skip
        assert "Traceback" not in res.stderr, res.stderr
        data = (
            json.loads(res.stdout)
            if "--output" in args and res.stdout.strip()
            else None
        )
        return res.returncode, data, res.stderr

    return run


def current(lab, host: str) -> str:
    return lab.run(host, ["readlink", "-f", "/run/current-system"]).stdout.strip()


def profile(lab, host: str) -> str:
    return lab.run(host, ["readlink", "-f", PROFILE]).stdout.strip()


def generation(lab, host: str) -> int:
    return int(lab.run(host, ["readlink", PROFILE]).stdout.strip().split("-")[1])


def by_host(data) -> dict:
    return {h["host"]: h for h in data["hosts"]}


def no_lock(lab, host: str) -> bool:
    return lab.run(host, ["test", "-e", LOCK]).returncode == 1


def assert_healthy(hd, *hosts: str) -> None:
    rc, data, err = hd("check", *hosts, "--check-timeout", "20", "--output", "json")
    assert rc == 0, (data, err)


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def plant_lock(
    lab, host: str, *, machine: str, pid: int, deadline: int, run: str, who: str = ""
) -> str:
    """The lock another deployer leaves: by default the same user@hostname as ours (the
    case the old code took over), its own machine identity, pid and deadline."""
    who = who or f"root@{socket.gethostname()}"
    holder = f"{who} pid {pid} since 2026-01-01T00:00:00Z (run {run})"
    body = (
        'mkdir -p "$1" && printf "%s\\n" "$2" > "$1/holder" && printf "%s\\n" "$3" > "$1/run" '
        '&& printf "%s\\n" "$4" > "$1/machine" && printf "%s\\n" "$5" > "$1/pid" '
        '&& printf "%s\\n" "$6" > "$1/deadline"'
    )
    lab.run(
        host,
        ["sh", "-c", body, "x", LOCK, holder, run, machine, str(pid), str(deadline)],
    )
    return holder


# ------------------------------------------------------------------ locks


@pytest.mark.parametrize(
    "who", ["", "alice@elsewhere"], ids=["same-user-at-host", "other"]
)
def test_a_live_lock_of_another_machine_is_not_taken(lab, hd, who):
    """Two deployers on one host, the other one from another machine: whether its
    user@hostname equals ours or not, its live lock stands."""
    gen = generation(lab, "w1")
    holder = plant_lock(lab, "w1", machine="0" * 32, pid=dead_pid(), who=who,
                        deadline=int(time.time()) + 3600, run="20260101T000000Z-aaaaaa")  # fmt: skip
    try:
        rc, data, err = hd("deploy", "w1", f"--closure=w1={lab.closure('w1')}", *FAST,
                           "--output", "json")  # fmt: skip
        assert rc == 1, err
        w1 = by_host(data)["w1"]
        assert w1["outcome"] == "locked" and w1["failed_step"] == "lock", w1
        assert holder in w1["message"]
        assert generation(lab, "w1") == gen
        # still the other deployer's lock, untouched
        assert (
            lab.run("w1", ["cat", f"{LOCK}/run"]).stdout.strip()
            == "20260101T000000Z-aaaaaa"
        )
    finally:
        lab.run("w1", ["rm", "-rf", LOCK])


def test_a_lock_whose_holder_is_provably_gone_is_taken_over(lab, hd):
    # this machine's identity, a dead pid: taken over
    plant_lock(lab, "w1", machine=lock.machine_identity(), pid=dead_pid(),
               deadline=int(time.time()) + 3600, run="20260101T000000Z-bbbbbb")  # fmt: skip
    rc, _data, err = hd("deploy", "w1", f"--closure=w1={lab.closure('w1')}", *FAST,
                       "--output", "json")  # fmt: skip
    assert rc == 0, err
    assert "took over a stale lock" in err and "on this machine is gone" in err
    assert no_lock(lab, "w1")
    # another machine, its deadline passed and no guard of its run: taken over
    plant_lock(lab, "w1", machine="1" * 32, pid=1, deadline=int(time.time()) - 10,
               run="20260101T000000Z-cccccc")  # fmt: skip
    rc, _data, err = hd("deploy", "w1", f"--closure=w1={lab.closure('w1')}", *FAST,
                        "--output", "json")  # fmt: skip
    assert rc == 0, err
    assert "deadline passed" in err and no_lock(lab, "w1")


def test_a_retry_is_refused_while_a_guard_of_an_earlier_run_is_rolling_back(lab, hd):
    """A guard that already decided (`watchdog`) and is still rolling back counts as
    active: a retry would race it for the profile."""
    run = "20260101T000000Z-dddddd"
    state = f"/var/lib/hydradeploy/runs/{run}-activate"
    gen = generation(lab, "w1")
    lab.run("w1", ["sh", "-c",
                   ('mkdir -p "$1" && printf "sleep 60\\n" > "$1/guard.sh" && '
                    'ln -s watchdog "$1/decision" && '
                    '(setsid /bin/sh "$1/guard.sh" </dev/null >/dev/null 2>&1 & echo $! > "$1/pid")'),
                   "x", state])  # fmt: skip
    try:
        rc, data, err = hd("deploy", "w1", f"--closure=w1={lab.closure('w1')}", *FAST,
                           "--output", "json")  # fmt: skip
        assert rc == 1, err
        w1 = by_host(data)["w1"]
        assert w1["outcome"] == "locked" and w1["failed_step"] == "lock"
        assert f"{run}-activate" in w1["message"] and "w1" in w1["message"]
        assert "\n" not in w1["message"]
        assert generation(lab, "w1") == gen and no_lock(lab, "w1")
    finally:
        lab.run(
            "w1", ["sh", "-c", 'kill "$(cat "$1/pid")"; touch "$1/done"', "x", state]
        )
    assert_healthy(hd, "w1")


# ------------------------------------------------------------------ signals


def start_deploy(lab, state_home, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state_home)}
    return subprocess.Popen(
        argv(lab, "deploy", *args, "--output", "json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def signal_at(
    proc: subprocess.Popen[str], marker: str, *signums: int, gap: float = 0.3
) -> str:
    """Send `signums` (`gap` s apart) as soon as stderr shows `marker`; return all stderr."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            for n, s in enumerate(signums):
                if n:
                    time.sleep(gap)
                proc.send_signal(s)
            break
    _out, rest = proc.communicate(timeout=120)
    proc.stdout_text = _out  # type: ignore[attr-defined]
    return "".join(seen) + rest


def wait_guard_done(lab, host: str, run_id: str, timeout: float = 60) -> None:
    """Until the run's guard on `host` finished (no-op when none was armed)."""
    deadline = time.monotonic() + timeout
    state = f"/var/lib/hydradeploy/runs/{run_id}-activate"
    if lab.run(host, ["test", "-d", state]).returncode != 0:
        return
    while lab.run(host, ["test", "-e", f"{state}/done"]).returncode != 0:
        assert time.monotonic() < deadline, f"{host}: guard of {run_id} never finished"
        time.sleep(0.5)


def recorded(state_home: Path, run_id: str) -> dict:
    lines = (state_home / "hydradeploy" / "deploys.jsonl").read_text().splitlines()
    return next(e for e in map(json.loads, lines) if e["id"] == run_id)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_before_confirmation_releases_the_lock_and_writes_the_record(
    lab, hd, state_home, signum
):
    """SIGTERM (systemd stopping a CI job) and SIGHUP (a closed terminal) act as Ctrl-C:
    stop at the next safe point, release the lock, write the record, exit 128+N."""
    old = (generation(lab, "w1"), current(lab, "w1"))
    proc = start_deploy(
        lab, state_home, "w1", f"--closure=w1={lab.closure('w1')}", *FAST
    )
    err = signal_at(proc, "w1: copy", signum)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "exit status -1" not in err
    data = json.loads(proc.stdout_text)  # type: ignore[attr-defined]
    assert data["outcome"] == "interrupted"
    w1 = by_host(data)["w1"]
    assert w1["outcome"] == "interrupted" and w1["failed_step"] in (
        "copy",
        "wait",  # copied, the activation slot not yet granted: nothing changed either
        "activate",
    ), w1
    rec = recorded(state_home, data["id"])
    assert (
        rec["outcome"] == "interrupted" and rec["hosts"][0]["outcome"] == "interrupted"
    )
    assert no_lock(lab, "w1")
    # not confirmed: the guard puts the host back by itself
    wait_guard_done(lab, "w1", data["id"])
    assert (generation(lab, "w1"), current(lab, "w1")) == old
    assert profile(lab, "w1") == current(lab, "w1")
    assert_healthy(hd, "w1")


def test_a_second_interrupt_never_skips_a_host_in_flight(lab, hd, state_home):
    old = (generation(lab, "w1"), current(lab, "w1"))
    proc = start_deploy(
        lab, state_home, "w1", f"--closure=w1={lab.closure('w1')}", *FAST
    )
    # close together: the copy (nix copy, stopped by the first) ends within ~0.3 s
    err = signal_at(
        proc, "w1: copy", signal.SIGINT, signal.SIGINT, signal.SIGTERM, gap=0.03
    )
    assert proc.returncode == 130, err
    assert "already stopping" in err and "Traceback" not in err
    assert "exit status -1" not in err
    data = json.loads(proc.stdout_text)  # type: ignore[attr-defined]
    w1 = by_host(data)["w1"]
    assert w1["outcome"] == "interrupted" and "not started" not in w1["message"], w1
    assert recorded(state_home, data["id"])["hosts"][0]["outcome"] == "interrupted"
    assert no_lock(lab, "w1")
    wait_guard_done(lab, "w1", data["id"])
    assert (
        (generation(lab, "w1"), current(lab, "w1"))
        == old
        == (old[0], profile(lab, "w1"))
    )


# ------------------------------------------------------------------ verified generations


def test_rollback_goes_to_the_last_verified_generation_not_the_failed_one(
    lab, hd, state_home
):
    good = lab.closure("w1")
    rc, data, err = hd(
        "deploy", "w1", f"--closure=w1={good}", *FAST, "--output", "json"
    )
    assert rc == 0, err
    gen_good = generation(lab, "w1")
    assert by_host(data)["w1"]["verified"] is True
    assert recorded(state_home, data["id"])["hosts"][0]["verified"] is True
    # a deploy that fails its checks is rolled back; its generation stays, unverified
    rc, data, err = hd("deploy", "w1", f"--closure=w1={lab.closure('w1', fault='join')}",
                       "--confirm-timeout", "5", "--check-timeout", "6", "--output", "json")  # fmt: skip
    assert rc == 1 and by_host(data)["w1"]["outcome"] == "rolled back", err
    assert generation(lab, "w1") == gen_good
    failed_gen = max(
        g["generation"] for g in hd("generations", "w1", "--output", "json")[1]
    )
    assert failed_gen > gen_good
    newer = lab.closure("w1")
    rc, data, err = hd(
        "deploy", "w1", f"--closure=w1={newer}", *FAST, "--output", "json"
    )
    assert rc == 0, err
    rc, gens, _ = hd("generations", "w1", "--output", "json")
    flags = {g["generation"]: g["verified"] for g in gens}
    assert flags[gen_good] is True and flags[failed_gen] is False
    assert flags[generation(lab, "w1")] is True
    # the host keeps its own record of it
    text = lab.run("w1", ["cat", "/var/lib/hydradeploy/verified"]).stdout
    assert f"{gen_good} {good} " in text
    # `rollback w1` without --to: the verified one, never the failed one just before
    rc, data, err = hd("rollback", "w1", *FAST, "--output", "json")
    assert rc == 0, err
    assert generation(lab, "w1") == gen_good and current(lab, "w1") == good
    assert by_host(data)["w1"]["verified"] is True
    assert_healthy(hd, "w1")


# ------------------------------------------------------------------ armed through the checks


def test_ctrl_c_during_the_checks_of_a_bad_closure_rolls_back(lab, hd, state_home):
    """Before: the guard was confirmed before the checks, so the interrupted run left
    the host on a generation that never passed them."""
    old = (generation(lab, "w1"), current(lab, "w1"))
    bad = lab.closure("w1", fault="join")
    proc = start_deploy(lab, state_home, "w1", f"--closure=w1={bad}", *FAST)
    err = signal_at(proc, "w1: checks", signal.SIGINT)
    assert proc.returncode == 130, err
    data = json.loads(proc.stdout_text)  # type: ignore[attr-defined]
    w1 = by_host(data)["w1"]
    assert w1["failed_step"] == "checks" and w1["outcome"] == "rolled back", w1
    assert "interrupted" in w1["message"]
    # `verified` is about generation_after, the old one: verified when healthy again
    assert w1["verified"] is w1["healthy_after_rollback"], w1
    assert (generation(lab, "w1"), current(lab, "w1")) == old
    assert profile(lab, "w1") == current(lab, "w1") and no_lock(lab, "w1")
    assert_healthy(hd, "w1")


def test_a_deployer_killed_during_the_checks_leaves_a_host_that_rolls_back(
    lab, hd, state_home
):
    old = (generation(lab, "w1"), current(lab, "w1"))
    bad = lab.closure("w1", fault="join")
    proc = start_deploy(lab, state_home, "w1", f"--closure=w1={bad}", "--confirm-timeout", "5",
                        "--check-timeout", "4", "--stability-window", "1")  # fmt: skip
    signal_at(proc, "w1: checks", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    run_id = lab.run("w1", ["cat", f"{LOCK}/run"]).stdout.strip()
    assert run_id, "the killed run's lock is gone?"
    wait_guard_done(lab, "w1", run_id, timeout=60)
    log = lab.run(
        "w1", ["cat", f"/var/lib/hydradeploy/runs/{run_id}-activate/guard.log"]
    ).stdout
    assert "reached" in log and "rolling back" in log, log
    assert (
        (generation(lab, "w1"), current(lab, "w1"))
        == old
        == (old[0], profile(lab, "w1"))
    )
    # the killed run's lock (same machine, pid gone, guard finished) is taken over
    rc, _data, err = hd("deploy", "w1", f"--closure=w1={lab.closure('w1')}", *FAST,
                        "--output", "json")  # fmt: skip
    assert rc == 0 and "took over a stale lock" in err, err
    assert_healthy(hd, "w1")


# Where the deployer is killed (signals.pause_point in the engine), and what the host
# must run afterwards: the generation it had ("old") or, once confirmed, the new one.
KILL_POINTS = [
    ("arm", "old"),  # lock taken, nothing on the host changed yet
    ("armed", "old"),  # the guard runs: it set the profile and activates (the old gap)
    ("activated", "old"),  # activated, not yet reached over a new connection
    ("reached", "old"),  # the guard waits for the checks
    ("confirm", "old"),  # the checks passed; not confirmed yet
    ("confirmed", "new"),  # confirmed; lock and record not yet written
]


@pytest.mark.parametrize(
    ("point", "ends_on"), KILL_POINTS, ids=[p for p, _ in KILL_POINTS]
)
def test_sigkill_at_each_point_leaves_a_checked_generation_and_a_lock_taken_over(
    lab, hd, state_home, point, ends_on
):
    """SIGKILL at each step, including the old gap between profile and guard (now one
    remote command: the guard sets the profile). Afterwards the host runs a generation
    that passed its checks, the profile points at it, `check` passes, and the dead run's
    lock is taken over by the next deploy (same machine, pid gone, guard finished)."""
    old = (generation(lab, "w1"), current(lab, "w1"))
    new = lab.closure("w1")
    env = {**os.environ, "XDG_STATE_HOME": str(state_home),
           "HYDRADEPLOY_PAUSE_AT": f"w1:{point}", "HYDRADEPLOY_PAUSE_SECONDS": "120"}  # fmt: skip
    proc = subprocess.Popen(
        argv(lab, "deploy", "w1", f"--closure=w1={new}", "--confirm-timeout", "5",
             "--check-timeout", "4", "--stability-window", "1", "--output", "json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    err = signal_at(proc, f"paused at w1:{point}", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, err
    run_id = lab.run("w1", ["cat", f"{LOCK}/run"]).stdout.strip()
    assert run_id, f"the killed run's lock is gone? {err}"
    wait_guard_done(lab, "w1", run_id, timeout=90)
    if ends_on == "old":
        assert (generation(lab, "w1"), current(lab, "w1")) == old, point
    else:
        assert current(lab, "w1") == new and generation(lab, "w1") > old[0], point
    assert profile(lab, "w1") == current(lab, "w1"), point
    assert_healthy(hd, "w1")
    # the dead run's lock: taken over, then released
    rc, _data, err = hd("deploy", "w1", "--mode", "dry-activate", f"--closure=w1={new}",
                        "--output", "json")  # fmt: skip
    assert rc == 0 and "took over a stale lock" in err, err
    assert no_lock(lab, "w1")


# Ctrl-C at each point after the lock: what the host must end on. Once activated, the
# interrupted run still polls the checks once: when they pass at that poll (a good
# closure whose node is back at once, the usual case on an idle machine) it finishes the
# bounded stability window and ends deployed and verified; otherwise it rolls back.
INT_POINTS = ["arm", "armed", "activated", "reached", "confirm"]


@pytest.mark.parametrize("point", INT_POINTS)
def test_ctrl_c_at_each_point_ends_on_a_checked_generation_with_lock_and_record(
    lab, hd, state_home, point
):
    """Ctrl-C before the guard (nothing changed), while it activates, between the
    activation and the confirm, before the checks, after them: exit 130, the lock
    released, the record written, the host on the old generation or — only when its
    checks passed — on the new one, verified; profile and running system agree."""
    old = (generation(lab, "w1"), current(lab, "w1"))
    new = lab.closure("w1")
    env = {**os.environ, "XDG_STATE_HOME": str(state_home),
           "HYDRADEPLOY_PAUSE_AT": f"w1:{point}", "HYDRADEPLOY_PAUSE_SECONDS": "120"}  # fmt: skip
    proc = subprocess.Popen(
        argv(lab, "deploy", "w1", f"--closure=w1={new}", *FAST, "--output", "json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    err = signal_at(proc, f"paused at w1:{point}", signal.SIGINT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    data = json.loads(proc.stdout_text)  # type: ignore[attr-defined]
    w1 = by_host(data)["w1"]
    assert data["outcome"] == "interrupted" and "not started" not in w1["message"], w1
    assert recorded(state_home, data["id"])["hosts"][0]["outcome"] == w1["outcome"]
    assert no_lock(lab, "w1")
    wait_guard_done(lab, "w1", data["id"])
    if w1["outcome"] == "deployed":
        assert point in ("activated", "reached", "confirm"), w1
        assert current(lab, "w1") == new and w1["verified"] is True
    else:
        assert w1["outcome"] in (
            "interrupted",
            "rolled back",
            "rolled back by the host",
        ), w1
        assert (generation(lab, "w1"), current(lab, "w1")) == old, w1
        if point == "arm":
            assert w1["message"].startswith(
                "interrupted before activation; nothing changed"
            )
    assert profile(lab, "w1") == current(lab, "w1")
    assert_healthy(hd, "w1")


def test_k3s_crashing_after_passing_the_checks_is_rolled_back(lab, hd):
    from hydradeploy.deploy.engine import Engine, Options
    from hydradeploy.deploy.progress import Progress
    from hydradeploy.inventory import load_inventory

    class CrashK3sInTheWindow(Progress):
        def step(self, host: str, step: str, detail: str = "") -> None:
            super().step(host, step, detail)
            if host == "w1" and step == "stability":  # k3s dies a moment after passing
                crash = threading.Timer(
                    1.5, lab.run, ("w1", ["systemctl", "restart", "k3s"])
                )
                crash.start()
                crashes.append(crash)

    crashes: list[threading.Timer] = []
    inv = load_inventory(Path(lab.inventory_path))
    old = (generation(lab, "w1"), current(lab, "w1"))
    opts = Options(confirm_timeout=5, check_timeout=20, stability_window=5,
                   closures={"w1": lab.closure("w1")})  # fmt: skip
    engine = Engine(
        inv, opts, CrashK3sInTheWindow(["w1"], quiet=True), "test-k3s-crash"
    )
    (rep,) = engine.run([inv.host("w1")])
    for crash in crashes:
        crash.join()
    assert len(crashes) == 1
    assert rep.outcome == "rolled back" and rep.failed_step == "checks", rep.as_json()
    # seen as a new k3s pid, or (caught mid-restart) as k3s not active: both in the window
    assert rep.failed_checks, rep.as_json()
    for c in rep.failed_checks:
        assert (
            "k3s restarted within 5 s" in c.detail or "5 s stability window" in c.detail
        ), c
    assert rep.healthy_after_rollback is True
    assert (generation(lab, "w1"), current(lab, "w1")) == old
    assert_healthy(hd, "w1")


# ------------------------------------------------------------------ diagnosis


def test_a_full_store_is_refused_at_preflight(lab, hd):
    gen = generation(lab, "w1")
    new = lab.closure("w1")
    lab.fill_disk("w1")
    try:
        rc, data, err = hd(
            "deploy", "w1", f"--closure=w1={new}", *FAST, "--output", "json"
        )
    finally:
        lab.free_disk("w1")
    assert rc == 1, err
    w1 = by_host(data)["w1"]
    assert w1["failed_step"] == "preflight" and w1["outcome"] == "failed", w1
    assert w1["message"].startswith("w1: /nix/store has 0 MiB free")
    assert "SQLite" not in err and "\n" not in w1["message"]
    assert generation(lab, "w1") == gen and no_lock(lab, "w1")


def test_a_guard_that_fails_to_arm_leaves_the_profile_on_what_runs(lab, hd):
    """/var/lib/hydradeploy/runs unusable (here a file): nothing is activated, and the
    profile, which only the guard moves, never left the running generation (before
    issue 15 it had been set just before and had to be set back)."""
    old = (generation(lab, "w1"), current(lab, "w1"))
    runs = "/var/lib/hydradeploy/runs"
    lab.run(
        "w1",
        ["sh", "-c", 'mkdir -p "$1" && mv "$1" "$1.keep" && touch "$1"', "x", runs],
    )
    try:
        rc, data, err = hd("deploy", "w1", f"--closure=w1={lab.closure('w1')}", *FAST,
                           "--output", "json")  # fmt: skip
    finally:
        lab.run("w1", ["sh", "-c", 'rm -f "$1" && mv "$1.keep" "$1"', "x", runs])
    assert rc == 1, err
    w1 = by_host(data)["w1"]
    assert w1["failed_step"] == "arm", w1
    assert "profile unchanged" in w1["message"], w1
    assert (generation(lab, "w1"), current(lab, "w1")) == old
    assert profile(lab, "w1") == current(lab, "w1") and no_lock(lab, "w1")


def test_a_host_cut_during_its_checks_is_reported_at_checks_and_rolls_back(lab, hd):
    old = (generation(lab, "w1"), current(lab, "w1"))
    from hydradeploy.deploy.engine import Engine, Options
    from hydradeploy.deploy.progress import Progress
    from hydradeploy.inventory import load_inventory

    class CutAtChecks(Progress):
        def step(self, host: str, step: str, detail: str = "") -> None:
            super().step(host, step, detail)
            if host == "w1" and step == "checks":
                lab.cut("w1")
                threading.Timer(25, lab.restore, ("w1",)).start()

    inv = load_inventory(Path(lab.inventory_path))
    opts = Options(confirm_timeout=5, check_timeout=3, stability_window=1,
                   closures={"w1": lab.closure("w1", fault="join")})  # fmt: skip
    try:
        (rep,) = Engine(
            inv, opts, CutAtChecks(["w1"], quiet=True), "test-cut-at-checks"
        ).run([inv.host("w1")])
    finally:
        time.sleep(1)
        lab.restore("w1")
    assert rep.failed_step == "checks", rep.as_json()
    assert rep.message.startswith("host unreachable during the checks: "), rep.message
    assert "preflight" not in rep.message
    assert rep.outcome in ("rolled back", "rolled back by the host"), rep.as_json()
    assert (generation(lab, "w1"), current(lab, "w1")) == old
    assert_healthy(hd, "w1")


def test_check_fails_when_the_profile_is_not_what_runs(lab, hd):
    """What a deployer killed between the profile and the guard leaves: profile N+1,
    running N. `check` says so (the next boot would start an unchecked closure)."""
    old_gen = generation(lab, "w1")
    new = lab.closure("w1")
    lab.copy_closure("w1", new)
    lab.run("w1", ["nix-env", "-p", PROFILE, "--set", new])
    rc, data, err = hd("check", "w1", "--output", "json")
    assert rc == 1, err
    (row,) = data
    bad = [c for c in row["checks"] if not c["ok"]]
    assert [c["check"] for c in bad] == ["profile"], row
    assert new in bad[0]["detail"] and "next boot" in bad[0]["detail"]
    rc, _data, err = hd(
        "rollback", "w1", "--to", str(old_gen), *FAST, "--output", "json"
    )
    assert rc == 0, err
    assert profile(lab, "w1") == current(lab, "w1")
    assert_healthy(hd, "w1")


def test_ctrl_c_during_the_checks_of_a_good_closure_ends_on_a_verified_generation(
    lab, hd, state_home
):
    old = (generation(lab, "w1"), current(lab, "w1"))
    good = lab.closure("w1")
    proc = start_deploy(lab, state_home, "w1", f"--closure=w1={good}", *FAST)
    err = signal_at(proc, "w1: checks", signal.SIGINT)
    assert proc.returncode == 130, err
    w1 = by_host(json.loads(proc.stdout_text))["w1"]  # type: ignore[attr-defined]
    assert no_lock(lab, "w1") and profile(lab, "w1") == current(lab, "w1")
    if w1["outcome"] == "deployed":  # the checks had passed: finished, verified
        assert current(lab, "w1") == good and w1["verified"] is True
    else:  # not verified yet: rolled back through the armed guard
        assert w1["outcome"] == "rolled back" and w1["failed_step"] == "checks", w1
        assert (generation(lab, "w1"), current(lab, "w1")) == old
    assert_healthy(hd, "w1")


# Swap w1's sshd host key (the only one, sshd.py: HostKey …ed25519_key) for a new one,
# or put the saved one back; `restart` keeps open sessions (Debian's ssh.service has
# KillMode=process), so only NEW connections see the change.
_SWAP_KEY = r"""
k=/etc/ssh/ssh_host_ed25519_key
case $1 in
  swap) cp -p "$k" "$k.saved" && cp -p "$k.pub" "$k.pub.saved" && rm -f "$k" "$k.pub" &&
        ssh-keygen -q -t ed25519 -N '' -f "$k" ;;
  back) [ -e "$k.saved" ] && mv -f "$k.saved" "$k" && mv -f "$k.pub.saved" "$k.pub" ;;
esac
systemctl restart ssh
"""


def test_a_host_key_changed_during_activation_is_one_line_and_the_guard_rolls_back(
    lab, hd, state_home
):
    """The host presents another key to the confirm's new connection (a closure that
    regenerates it, or a man in the middle): refused, never added; the cause is one
    line naming host, step and both fingerprints; the host is rolled back by its guard
    (asked through the working connection, which the swap does not touch)."""
    old = (generation(lab, "w1"), current(lab, "w1"))
    env = {**os.environ, "XDG_STATE_HOME": str(state_home),
           "HYDRADEPLOY_PAUSE_AT": "w1:armed", "HYDRADEPLOY_PAUSE_SECONDS": "5"}  # fmt: skip
    proc = subprocess.Popen(
        argv(lab, "deploy", "w1", f"--closure=w1={lab.closure('w1')}", *FAST,
             "--output", "json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "paused at w1:armed" in line:  # the guard is activating
                assert (
                    lab.run("w1", ["sh", "-c", _SWAP_KEY, "x", "swap"]).returncode == 0
                )
                break
        out, rest = proc.communicate(timeout=180)
    finally:
        lab.run("w1", ["sh", "-c", _SWAP_KEY, "x", "back"])
    err = "".join(seen) + rest
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "paramiko" not in err.lower(), err
    w1 = by_host(json.loads(out))["w1"]
    assert w1["failed_step"] == "confirm", w1
    assert w1["outcome"] in ("rolled back", "rolled back by the host"), w1
    cause = w1["message"]
    assert "\n" not in cause and "w1: host key of" in cause and "changed" in cause, (
        cause
    )
    assert cause.startswith("the new SSH connection after activation was refused: "), (
        cause
    )
    assert "protocol banner" not in err
    assert (generation(lab, "w1"), current(lab, "w1")) == old
    assert profile(lab, "w1") == current(lab, "w1") and no_lock(lab, "w1")
    assert_healthy(hd, "w1")
