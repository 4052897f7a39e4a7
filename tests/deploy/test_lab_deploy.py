"""The deploy engine against the lab: real sshd, real Nix stores and profiles, real
network faults; only switch-to-configuration and k3s are simulated (see docs/lab.md).

One lab (a server and two agents) is shared by the module; every test leaves each
host on a healthy generation, so the next one starts from a good cluster.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hydradeploy.lab import HostSpec

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PROFILE = "/nix/var/nix/profiles/system"
# a short stability window: the path runs, the suite stays within CI\'s time
FAST = ["--confirm-timeout", "5", "--check-timeout", "20", "--stability-window", "2"]


@pytest.fixture(scope="module")
def lab(lab_factory):
    return lab_factory(
        [
            HostSpec("srv", "server", gpus={"nvidia": 2}),
            HostSpec(
                "w1",
                "agent",
                gpus={"nvidia": 2},
                labels={"hydra.io/gpu-class": "generation"},
            ),
            HostSpec(
                "w2",
                "agent",
                gpus={"amd": 1},
                taints=("hydra.io/igpu=true:PreferNoSchedule",),
            ),
        ]
    )


@pytest.fixture(scope="module")
def state_home(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


@pytest.fixture
def hd(lab, state_home):
    """Run `hydradeploy --inventory LAB …`; returns (exit status, parsed JSON or None, stderr)."""

    def run(*args: str, timeout: float = 240):
        env = {**os.environ, "XDG_STATE_HOME": str(state_home)}
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "hydradeploy",
                "--inventory",
                str(lab.inventory_path),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        assert "Traceback" not in res.stderr, res.stderr
        data = None
        if "--output" in args and res.stdout.strip():
            data = json.loads(res.stdout)
        return res.returncode, data, res.stderr

    return run


def current(lab, host: str) -> str:
    return lab.run(host, ["readlink", "-f", "/run/current-system"]).stdout.strip()


def profile(lab, host: str) -> str:
    return lab.run(host, ["readlink", "-f", PROFILE]).stdout.strip()


def generation(lab, host: str) -> int:
    link = lab.run(host, ["readlink", PROFILE]).stdout.strip()
    return int(link.split("-")[1])


def activations(lab, host: str) -> int:
    res = lab.run(
        host, ["sh", "-c", "cat /var/lib/hydra-lab/activations.log 2>/dev/null | wc -l"]
    )
    return int(res.stdout.strip() or 0)


def by_host(data) -> dict:
    return {h["host"]: h for h in data["hosts"]}


def assert_healthy(hd, *hosts: str) -> None:
    rc, data, err = hd("check", *hosts, "--check-timeout", "20", "--output", "json")
    assert rc == 0, (data, err)


def test_good_deploy_of_a_server_and_two_agents(lab, hd, state_home):
    before = {h: generation(lab, h) for h in ("srv", "w1", "w2")}
    closures = {h: lab.closure(h) for h in ("srv", "w1", "w2")}
    args = [f"--closure={h}={p}" for h, p in closures.items()]
    rc, data, err = hd("deploy", "--all", *args, *FAST, "--output", "json")
    assert rc == 0, err
    hosts = by_host(data)
    # servers first, agents after (plain progress lines on stderr, not a TTY): an agent
    # activates only after the server was verified, but is copied to meanwhile
    for w in ("w1", "w2"):
        assert err.index("srv: deployed") < err.index(f"{w}: activate"), err
        assert err.index(f"{w}: copy") < err.index("srv: stability"), err
    for h in ("srv", "w1", "w2"):
        assert hosts[h]["outcome"] == "deployed"
        assert hosts[h]["generation_before"] == before[h]
        assert hosts[h]["generation_after"] == before[h] + 1 == generation(lab, h)
        assert current(lab, h) == closures[h] == profile(lab, h)
        # the working one, nix copy's OpenSSH one (the host lacked the new closure)
        # and the confirming one
        assert hosts[h]["ssh_connections"] == 3, hosts[h]
        assert lab.node_ready(h) is True
    # the record: locally, and each host keeps its own line
    rc, hist, _ = hd("history", "--output", "json")
    assert hist[-1]["id"] == data["id"] and hist[-1]["outcome"] == "ok"
    own = lab.run(
        "w1", ["tail", "-n", "1", "/var/lib/hydradeploy/deploys.jsonl"]
    ).stdout
    assert json.loads(own)["host"]["generation_after"] == before["w1"] + 1
    # the lock is released
    assert lab.run("w1", ["test", "-e", "/var/lib/hydradeploy/lock"]).returncode == 1


def test_status_generations_and_check(lab, hd):
    rc, rows, _ = hd("status", "--output", "json")
    assert rc == 0
    rows = {r["host"]: r for r in rows}
    assert set(rows) == {"srv", "w1", "w2"}
    for name, r in rows.items():
        assert r["generation"] == generation(lab, name)
        assert r["k3s_active"] is True and r["node_ready"] is True
        assert r["gpus_allocatable"] == r["gpus_expected"]
    assert rows["srv"]["gpus_expected"] == {"nvidia.com/gpu": 2}
    assert rows["w2"]["gpus_expected"] == {"amd.com/gpu": 1}
    rc, gens, _ = hd("generations", "w1", "--output", "json")
    assert rc == 0
    assert [g["generation"] for g in gens if g["current"]] == [generation(lab, "w1")]
    assert all(set(g) == {"generation", "date", "current", "verified"} for g in gens)
    rc, _table, _err = hd("status")
    assert rc == 0
    # a host that cannot be reached: what only it could tell is unknown (null / ?),
    # never false; the node object still comes from the server
    lab.cut("w2")
    try:
        rc, rows, err = hd(
            "status", "--on", "w2,@server", "--output", "json", timeout=120
        )
    finally:
        lab.restore("w2")
    assert rc == 0 and "Traceback" not in err and "Exception" not in err
    w2 = {r["host"]: r for r in rows}["w2"]
    assert w2["reachable"] is False and w2["error"].startswith("w2: cannot connect")
    assert w2["generation"] is None and w2["k3s_active"] is None
    assert w2["node"] in ("Ready", "NotReady")  # read from srv's API, not from w2
    assert_healthy(hd)


def test_plan_shows_order_and_changes_without_touching_anything(lab, hd):
    gens = {h: generation(lab, h) for h in ("srv", "w1", "w2")}
    runs = activations(lab, "w1")
    new = lab.closure("w1")
    rc, plan, err = hd("plan", "--all", f"--closure=w1={new}", "--output", "json")
    assert rc == 0, err
    assert plan["waves"] == [
        {"wave": 1, "kind": "cluster-init", "hosts": ["srv"], "window": 1},
        {"wave": 2, "kind": "agents", "hosts": ["w1", "w2"], "window": 4},
    ]
    w1 = by_host(plan)["w1"]
    assert w1["paths_to_copy"] == 1 and w1["generation"] == gens["w1"]
    assert any(line.startswith("nixos-system-w1") for line in w1["changes"])
    assert (
        "nixosConfigurations.srv.config.system.build.toplevel"
        in by_host(plan)["srv"]["build_command"]
    )
    assert {h: generation(lab, h) for h in gens} == gens and activations(
        lab, "w1"
    ) == runs
    assert (
        lab.run("w1", ["nix-store", "--check-validity", new]).returncode != 0
    )  # nothing copied


def test_activation_failure_rolls_back_and_stops_later_waves(lab, hd):
    old = {h: (generation(lab, h), current(lab, h)) for h in ("w1", "w2")}
    w2_runs = activations(lab, "w2")
    bad, good = lab.closure("w1", fault="activation"), lab.closure("w2")
    rc, data, _err = hd(
        "deploy",
        "w1",
        "w2",
        f"--closure=w1={bad}",
        f"--closure=w2={good}",
        "--max-parallel",
        "1",
        *FAST,
        "--output",
        "json",
    )
    assert rc == 1
    w1, w2 = by_host(data)["w1"], by_host(data)["w2"]
    assert w1["outcome"] == "rolled back" and w1["failed_step"] == "activate"
    assert (
        "exited with status 2" in w1["message"] and w1["healthy_after_rollback"] is True
    )
    assert (generation(lab, "w1"), current(lab, "w1")) == old["w1"]
    assert w2["outcome"] == "skipped" and "w1 failed" in w2["message"]
    assert (generation(lab, "w2"), current(lab, "w2")) == old["w2"] and activations(
        lab, "w2"
    ) == w2_runs
    assert_healthy(hd, "w1")


def test_network_cut_by_the_new_closure_is_rolled_back_by_the_host(lab, hd):
    old = (generation(lab, "w1"), current(lab, "w1"))
    bad = lab.closure("w1", fault="network")
    rc, data, err = hd("deploy", "w1", f"--closure=w1={bad}", *FAST, "--output", "json")
    assert rc == 1
    w1 = by_host(data)["w1"]
    assert "rolled back by the host" in err  # said to the person watching, too
    assert w1["outcome"] == "rolled back by the host", w1
    assert w1["failed_step"] == "confirm"
    assert w1["healthy_after_rollback"] is True
    assert (generation(lab, "w1"), current(lab, "w1")) == old
    log = lab.run(
        "w1",
        ["sh", "-c", f"cat /var/lib/hydradeploy/runs/{data['id']}-activate/guard.log"],
    ).stdout
    assert "no confirmation within 5s" in log and "rolling back" in log
    assert_healthy(hd, "w1")


@pytest.mark.parametrize(
    ("fault", "check"),
    # (A wrong --node-label no longer fails a deploy: k3s merges it without removing
    # the inventory's labels, and node_sync sets them through the API.)
    [("join", "node-ready"), ("lease", "node-ready"), ("gpus", "gpus")],
)
def test_join_check_failures_are_named_and_rolled_back(lab, hd, fault, check):
    old = (generation(lab, "w2"), current(lab, "w2"))
    bad = lab.closure("w2", fault=fault)
    rc, data, err = hd(
        "deploy",
        "w2",
        f"--closure=w2={bad}",
        "--confirm-timeout",
        "5",
        "--check-timeout",
        "8",
        "--output",
        "json",
    )
    assert rc == 1
    w2 = by_host(data)["w2"]
    assert w2["outcome"] == "rolled back" and w2["failed_step"] == "checks"
    assert check in [c["check"] for c in w2["failed_checks"]], w2
    assert w2["healthy_after_rollback"] is True, w2
    assert (generation(lab, "w2"), current(lab, "w2")) == old
    assert check in err  # said on the terminal too


def test_server_failing_its_checks_means_no_agent_is_deployed(lab, hd):
    agents_before = {h: (generation(lab, h), activations(lab, h)) for h in ("w1", "w2")}
    bad = lab.closure("srv", fault="gpus")
    args = [
        f"--closure=srv={bad}",
        f"--closure=w1={lab.closure('w1')}",
        f"--closure=w2={lab.closure('w2')}",
    ]
    rc, data, _err = hd(
        "deploy",
        "--all",
        *args,
        "--confirm-timeout",
        "5",
        "--check-timeout",
        "8",
        "--output",
        "json",
    )
    assert rc == 1
    hosts = by_host(data)
    assert (
        hosts["srv"]["outcome"] == "rolled back"
        and hosts["srv"]["failed_step"] == "checks"
    )
    for h in ("w1", "w2"):
        assert hosts[h]["outcome"] == "skipped"
        assert (generation(lab, h), activations(lab, h)) == agents_before[h]
    assert_healthy(hd)


def test_the_next_agent_is_copied_to_while_the_first_is_checked(lab, hd):
    """--max-parallel 1: w2 is prepared (locked, copied) while w1 is in its checks, and
    activates only once w1 is verified (the window of activated, unverified hosts)."""
    closures = {h: lab.closure(h) for h in ("w1", "w2")}
    args = [f"--closure={h}={p}" for h, p in closures.items()]
    rc, data, err = hd("deploy", "w1", "w2", *args, "--max-parallel", "1", *FAST,
                       "--output", "json")  # fmt: skip
    assert rc == 0, err
    assert (
        err.index("w2: copy") < err.index("w1: stability")  # w1 in its checks
    ), err
    assert err.index("w1: deployed") < err.index("w2: activate"), err
    w2 = by_host(data)["w2"]
    (wait,) = [s for s in w2["steps"] if s["step"] == "wait"]
    assert wait["ok"] is True and wait["seconds"] > 1, w2["steps"]
    for h in ("w1", "w2"):
        assert by_host(data)[h]["outcome"] == "deployed"
        assert current(lab, h) == closures[h] == profile(lab, h)


def test_keep_going_deploys_later_waves(lab, hd):
    w2_gen = generation(lab, "w2")
    bad, good = lab.closure("w1", fault="activation"), lab.closure("w2")
    rc, data, _err = hd(
        "deploy",
        "@agent",
        f"--closure=w1={bad}",
        f"--closure=w2={good}",
        "--max-parallel",
        "1",
        "--keep-going",
        *FAST,
        "--output",
        "json",
    )
    assert rc == 1
    hosts = by_host(data)
    assert hosts["w1"]["outcome"] == "rolled back"
    # a new generation (nix-env numbers it after the highest one, rolled back ones too)
    assert hosts["w2"]["outcome"] == "deployed" and generation(lab, "w2") > w2_gen
    assert current(lab, "w2") == good == profile(lab, "w2")


def test_no_rollback_leaves_the_failed_host_as_it_is(lab, hd):
    gen = generation(lab, "w1")
    bad = lab.closure("w1", fault="activation")
    rc, data, err = hd(
        "deploy",
        "w1",
        f"--closure=w1={bad}",
        "--no-rollback",
        *FAST,
        "--output",
        "json",
    )
    assert rc == 1
    w1 = by_host(data)["w1"]
    assert w1["outcome"] == "failed" and w1["failed_step"] == "activate"
    assert generation(lab, "w1") > gen and profile(lab, "w1") == bad
    assert lab.run("w1", ["test", "-e", "/var/lib/hydradeploy/lock"]).returncode == 1
    # `rollback --to` repairs it and runs the checks
    rc, data, err = hd(
        "rollback",
        "w1",
        "--to",
        str(gen),
        "--confirm-timeout",
        "5",
        "--check-timeout",
        "20",
        "--output",
        "json",
    )
    assert rc == 0, err
    assert generation(lab, "w1") == gen and by_host(data)["w1"]["outcome"] == "deployed"
    assert_healthy(hd, "w1")


def test_rollback_to_a_named_generation(lab, hd):
    rc, gens, _ = hd("generations", "w2", "--output", "json")
    now = next(g["generation"] for g in gens if g["current"])
    target = min(g["generation"] for g in gens)
    assert target != now
    target_path = lab.run(
        "w2", ["readlink", "-f", f"{PROFILE}-{target}-link"]
    ).stdout.strip()
    rc, _data, err = hd(
        "rollback",
        "w2",
        "--to",
        str(target),
        "--confirm-timeout",
        "5",
        "--check-timeout",
        "20",
        "--output",
        "json",
    )
    assert rc == 0, err
    assert generation(lab, "w2") == target and current(lab, "w2") == target_path
    rc, gens, _ = hd("generations", "w2", "--output", "json")
    assert [g["generation"] for g in gens if g["current"]] == [target]
    rc, _, err = hd("rollback", "w2", "--to", "999")
    assert rc == 2 and "no generation 999" in err


def test_a_second_concurrent_deploy_is_refused_by_the_lock(lab, hd):
    # the first deploy holds the lock while its node never reports (checks run out)
    slow = lab.closure("w1", fault="join")
    first: dict = {}

    def run_first():
        first["res"] = hd(
            "deploy",
            "w1",
            f"--closure=w1={slow}",
            "--confirm-timeout",
            "5",
            "--check-timeout",
            "8",
            "--output",
            "json",
        )

    t = threading.Thread(target=run_first)
    t.start()
    deadline = time.monotonic() + 20
    while (
        lab.run("w1", ["test", "-e", "/var/lib/hydradeploy/lock/run"]).returncode != 0
    ):
        assert time.monotonic() < deadline, "first deploy never took the lock"
        time.sleep(0.1)
    holder = lab.run("w1", ["cat", "/var/lib/hydradeploy/lock/holder"]).stdout.strip()
    rc, data, _err = hd(
        "deploy", "w1", f"--closure=w1={lab.closure('w1')}", *FAST, "--output", "json"
    )
    t.join(timeout=120)
    assert rc == 1
    w1 = by_host(data)["w1"]
    assert w1["outcome"] == "locked" and w1["failed_step"] == "lock"
    assert "another deploy holds the lock" in w1["message"] and holder in w1["message"]
    assert by_host(first["res"][1])["w1"]["outcome"] == "rolled back"
    assert lab.run("w1", ["test", "-e", "/var/lib/hydradeploy/lock"]).returncode == 1
    assert_healthy(hd, "w1")


def test_ctrl_c_during_a_wave_leaves_consistent_generations(lab, state_home):
    old = {h: (generation(lab, h), current(lab, h)) for h in ("w1", "w2")}
    # w1's activation cuts its network: from the tool's side it is mid-activation.
    args = [
        f"--closure=w1={lab.closure('w1', fault='network')}",
        f"--closure=w2={lab.closure('w2')}",
    ]
    env = {**os.environ, "XDG_STATE_HOME": str(state_home)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hydradeploy",
            "--inventory",
            str(lab.inventory_path),
            "deploy",
            "w1",
            "w2",
            *args,
            *FAST,
            "--output",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "w1: activate" in line:
            # Interrupt once the activation has cut w1 off (the guard, a systemd unit,
            # takes a moment to get there).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                state = lab.run("w1", ["cat", "/sys/class/net/eth0/operstate"]).stdout
                if state.strip() == "down":
                    break
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    data = json.loads(out)
    assert data["outcome"] == "interrupted"
    assert by_host(data)["w1"]["outcome"] == "interrupted"
    assert "watchdog rolls back" in by_host(data)["w1"]["message"]
    # the watchdog on w1 still protects it: back on its old generation by itself
    deadline = time.monotonic() + 30
    while (generation(lab, "w1"), current(lab, "w1")) != old["w1"]:
        assert time.monotonic() < deadline, "w1's watchdog did not roll back"
        time.sleep(0.5)
    for h in ("w1", "w2"):  # every host runs its profile's generation
        assert profile(lab, h) == current(lab, h)
    # the interrupted run's lock (its process is gone) is taken over by the next deploy
    res = subprocess.run(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path), "deploy", "w1",
         f"--closure=w1={lab.closure('w1')}", *FAST, "--output", "json"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    # Either the interrupted run's lock is taken over, or that run released it itself:
    # its release (15 s timeout) gets through once the host's watchdog has rolled back
    # and brought the link up again, which on a loaded machine may happen in time.
    assert "took over a stale lock" in res.stderr or "held" not in res.stderr
    assert_healthy_cli(lab, state_home)


def assert_healthy_cli(lab, state_home) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "hydradeploy",
            "--inventory",
            str(lab.inventory_path),
            "check",
            "--check-timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_STATE_HOME": str(state_home)},
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_unreachable_host_at_preflight(lab, hd):
    lab.cut("w2")
    try:
        rc, data, _err = hd(
            "deploy",
            "w2",
            f"--closure=w2={lab.closure('w2')}",
            *FAST,
            "--output",
            "json",
        )
    finally:
        lab.restore("w2")
    assert rc == 1
    w2 = by_host(data)["w2"]
    assert w2["outcome"] == "unreachable" and w2["failed_step"] == "connect"
    assert lab.address("w2") in w2["message"]
    lab.cut("w2")
    try:
        rc, plan, _ = hd("plan", "w2", "--output", "json")
        rc_status, rows, _ = hd("status", "--output", "json")
    finally:
        lab.restore("w2")
    assert rc == 1 and by_host(plan)["w2"]["summary"].startswith("unreachable: ")
    assert (
        rc_status == 0
    )  # status reports: the unreachable host is a row with its error
    w2_row = next(r for r in rows if r["host"] == "w2")
    assert w2_row["reachable"] is False and lab.address("w2") in w2_row["error"]


def test_wrong_host_key_is_refused(lab, hd, tmp_path):
    text = Path(lab.inventory_path).read_text()
    inv = tmp_path / "inventory.toml"
    # w1 claims srv's host key: the real w1 must be refused, never added
    keys = [
        ln.split('host_key = "')[1].split('"')[0]
        for ln in text.splitlines()
        if "host_key" in ln
    ]
    inv.write_text(text.replace(keys[1], keys[0]))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "hydradeploy",
            "--inventory",
            str(inv),
            "generations",
            "w1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 1
    assert "w1: host key mismatch" in res.stderr or "host key" in res.stderr, res.stderr


def test_jump_host_from_the_inventory(lab, tmp_path):
    text = Path(lab.inventory_path).read_text()
    start = text.index("[hosts.w1]")
    end = text.index("[hosts.w2]")

    def via(
        jump: str, known_hosts: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        block = text[start:end].replace(
            "ssh = { host_key", f'ssh = {{ jump = "{jump}", host_key'
        )
        assert block != text[start:end]
        inv = tmp_path / "inventory.toml"
        head = text[:start]
        if known_hosts is not None:
            head = re.sub(
                r'known_hosts = ".*"', f'known_hosts = "{known_hosts}"', head, count=1
            )
        inv.write_text(head + block + text[end:])
        return subprocess.run(
            [sys.executable, "-m", "hydradeploy", "--inventory", str(inv), "generations", "w1", "--output", "json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    res = via(f"root@{lab.address('srv')}")
    assert res.returncode == 0, res.stderr
    assert any(g["current"] for g in json.loads(res.stdout))
    lab.cut("w2")
    try:
        res = via(
            f"root@{lab.address('w2')}:22"
        )  # the jump host is down: named, exit 1
    finally:
        lab.restore("w2")
    assert res.returncode == 1 and "w1: cannot connect" in res.stderr, res.stderr
    # the jump host's key is checked too: with a known_hosts that lacks it, refused
    # (w1's own key still comes from its inventory host_key)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    res = via(f"root@{lab.address('srv')}", known_hosts=empty)
    assert res.returncode == 1, res.stderr
    assert f"w1: host key of {lab.address('srv')} is unknown" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    # a jump host that cannot be right is found before connecting: exit 2, one line
    for bad, says in (("root@srv:notaport", "port 'notaport' is not a number"),
                      ("root@srv:99999", "port 99999 is out of range"),
                      ("@srv", "the user before '@' is empty")):  # fmt: skip
        res = via(bad)
        assert res.returncode == 2 and f"w1: ssh.jump {bad!r}: {says}" in res.stderr, (
            res.stderr
        )
        assert len(res.stderr.strip().splitlines()) == 1


def test_modes_boot_test_and_dry_activate(lab, hd):
    gen, running = generation(lab, "w1"), current(lab, "w1")
    runs = activations(lab, "w1")
    new = lab.closure("w1")
    rc, data, err = hd(
        "deploy",
        "w1",
        f"--closure=w1={new}",
        "--mode",
        "dry-activate",
        *FAST,
        "--output",
        "json",
    )
    assert rc == 0, err
    assert by_host(data)["w1"]["outcome"] == "unchanged"
    assert (generation(lab, "w1"), current(lab, "w1"), activations(lab, "w1")) == (
        gen,
        running,
        runs,
    )
    rc, data, err = hd(
        "deploy",
        "w1",
        f"--closure=w1={new}",
        "--mode",
        "boot",
        *FAST,
        "--output",
        "json",
    )
    assert rc == 0, err
    assert by_host(data)["w1"]["outcome"] == "unchanged"  # active after the next reboot
    assert profile(lab, "w1") == new and current(lab, "w1") == running
    test_closure = lab.closure("w1")
    rc, data, err = hd(
        "deploy",
        "w1",
        f"--closure=w1={test_closure}",
        "--mode",
        "test",
        *FAST,
        "--output",
        "json",
    )
    assert rc == 0, err
    assert by_host(data)["w1"]["outcome"] == "deployed"
    assert (
        current(lab, "w1") == test_closure and profile(lab, "w1") == new
    )  # test: profile untouched
    rc, data, err = hd("deploy", "w1", f"--closure=w1={new}", *FAST, "--output", "json")
    assert rc == 0, err
    assert current(lab, "w1") == new == profile(lab, "w1")


def test_a_closure_that_breaks_sshd_is_rolled_back_by_the_host(lab, state_home):
    """sshd dies after the activation starts (as with a config that breaks it): no new
    connection can confirm, the host's watchdog rolls back, and the tool learns it over
    the session that is still open."""
    from hydradeploy.deploy.engine import Engine, Options
    from hydradeploy.deploy.progress import Progress
    from hydradeploy.inventory import load_inventory

    class BreakSshdOnActivate(Progress):
        def step(self, host: str, step: str, detail: str = "") -> None:
            if host == "w1" and step == "activate":
                lab.kill_sshd("w1")
            super().step(host, step, detail)

    inv = load_inventory(Path(lab.inventory_path))
    old = (generation(lab, "w1"), current(lab, "w1"))
    opts = Options(
        confirm_timeout=5, check_timeout=20, closures={"w1": lab.closure("w1")}
    )
    engine = Engine(
        inv, opts, BreakSshdOnActivate(["w1"], quiet=True), "test-sshd-broken"
    )
    try:
        (rep,) = engine.run([inv.host("w1")])
    finally:
        lab.start_sshd("w1")
    assert rep.outcome == "rolled back by the host", rep.as_json()
    assert rep.failed_step == "confirm" and rep.healthy_after_rollback is True
    assert (generation(lab, "w1"), current(lab, "w1")) == old
