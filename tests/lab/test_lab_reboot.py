"""`hydradeploy reboot` on lab hosts booted with systemd: cordon, drain, a real reboot
(new PID 1), wait for the boot, the join checks, uncordon; agents one at a time; a node
that does not come back stops the run and leaves the other hosts untouched. Also the
simulated kubectl's cordon/uncordon/drain (lab/guest/k3s_cli.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Self

import pytest
from hydradeploy.lab import HostSpec, Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PROFILE = "/nix/var/nix/profiles/system"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
FAST = ["--check-timeout", "30", "--boot-timeout", "60", "--drain-timeout", "20"]


@pytest.fixture(scope="module")
def lab(lab_factory) -> Lab:
    return lab_factory([
        HostSpec("srv", "server", gpus={"nvidia": 1}),
        HostSpec("w1", "agent", gpus={"nvidia": 1}),
        HostSpec("w2", "agent", gpus={"nvidia": 1}),
    ])  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path_factory.mktemp("state"))}


def reboot(
    lab: Lab, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path),
         "reboot", *args, *FAST, "--output", "json"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip


def node(lab: Lab, name: str) -> dict[str, Any]:
    return next(n for n in lab.nodes() if n["metadata"]["name"] == name)


def cordoned(n: dict[str, Any]) -> bool:
    return bool(n["spec"].get("unschedulable"))


def taint_keys(n: dict[str, Any]) -> list[str]:
    return [t["key"] for t in n["spec"].get("taints", [])]


class Watcher:
    """Records, every 0.1 s, which nodes are cordoned: what happened while the command ran."""

    def __init__(self, lab: Lab) -> None:
        self.lab, self.seen = lab, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                nodes = self.lab.nodes()
                now = {n["metadata"]["name"] for n in nodes if cordoned(n)}
                if not self.seen or self.seen[-1] != now:
                    self.seen.append(now)
            except OSError:
                pass  # the API is down while its server reboots
            time.sleep(0.1)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def generation(lab: Lab, host: str) -> str:
    return lab.run(host, ["readlink", PROFILE]).stdout.strip()


def test_kubectl_cordon_sets_unschedulable_and_the_controller_taints(lab: Lab) -> None:
    out = lab.run("srv", ["k3s", "kubectl", "cordon", "w2"])
    assert out.returncode == 0, out.stderr
    n = node(lab, "w2")
    assert cordoned(n) and UNSCHEDULABLE in taint_keys(n)
    table = lab.run("srv", ["k3s", "kubectl", "get", "nodes"]).stdout
    assert [ln.split()[1] for ln in table.splitlines() if ln.startswith("w2 ")] == [
        "Ready,SchedulingDisabled"
    ], table
    assert [t["effect"] for t in n["spec"]["taints"] if t["key"] == UNSCHEDULABLE] == [
        "NoSchedule"
    ]
    drain = lab.run("srv", ["k3s", "kubectl", "drain", "w2", "--ignore-daemonsets",
                            "--delete-emptydir-data", "--timeout=5s"])  # fmt: skip
    assert drain.returncode == 0 and "drained" in drain.stdout, drain.stderr
    out = lab.run("srv", ["k3s", "kubectl", "uncordon", "w2"])
    assert out.returncode == 0, out.stderr
    n = node(lab, "w2")
    assert not cordoned(n) and UNSCHEDULABLE not in taint_keys(n)
    missing = lab.run("srv", ["k3s", "kubectl", "cordon", "nope"])
    assert missing.returncode == 1 and 'nodes "nope" not found' in missing.stderr


def test_reboot_one_host(lab: Lab, env: dict[str, str]) -> None:
    leader, boots, gen = lab.leader_pid("w1"), lab.boots("w1"), generation(lab, "w1")
    with Watcher(lab) as watch:
        res = reboot(lab, env, "w1")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["outcome"] == "ok", row
    assert row["steps"] == [
        "cordon",
        "drain",
        "reboot",
        "wait-boot",
        "checks",
        "uncordon",
    ]
    assert {"w1"} in watch.seen  # it was cordoned while it rebooted
    assert lab.boots("w1") == boots + 1 and lab.leader_pid("w1") not in (None, leader)
    assert (
        row["generation_before"] == row["generation_after"]
        and generation(lab, "w1") == gen
    )
    n = node(lab, "w1")
    assert (
        lab.node_ready("w1") and not cordoned(n) and UNSCHEDULABLE not in taint_keys(n)
    )
    last = records(env)[-1]  # `history` shows reboots too
    assert (last["command"], last["outcome"]) == ("reboot", "ok")
    assert [(h["host"], h["outcome"], h["steps"]) for h in last["hosts"]] == [
        ("w1", "ok", row["steps"])
    ]


def records(env: dict[str, str]) -> list[dict[str, Any]]:
    path = os.path.join(env["XDG_STATE_HOME"], "hydradeploy", "deploys.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_ctrl_c_during_a_reboot_finishes_the_host_in_flight_and_starts_no_other(
    lab: Lab, env: dict[str, str]
) -> None:
    """Stopping a host between cordon and uncordon would leave it cordoned or
    unchecked: the interrupted run lets w1 come back and uncordon, never starts w2,
    records "interrupted" and exits 130."""
    boots = {h: lab.boots(h) for h in ("w1", "w2")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path),
         "reboot", "w1", "w2", *FAST, "--output", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "w1: wait-boot" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=300)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "stopping after the hosts being rebooted are back" in err, err
    rows = {r["host"]: r for r in json.loads(out)}
    assert rows["w1"]["outcome"] == "ok" and rows["w1"]["steps"][-1] == "uncordon", rows
    assert rows["w2"]["outcome"] == "skipped", rows
    assert rows["w2"]["message"] == "not touched: interrupted by SIGINT"
    assert {h: lab.boots(h) - boots[h] for h in boots} == {"w1": 1, "w2": 0}
    assert not cordoned(node(lab, "w1")) and not cordoned(node(lab, "w2"))
    last = records(env)[-1]
    assert (last["command"], last["outcome"]) == ("reboot", "interrupted")
    assert {h["host"]: h["outcome"] for h in last["hosts"]} == {
        "w1": "ok",
        "w2": "skipped",
    }


def test_reboot_agents_one_at_a_time(lab: Lab, env: dict[str, str]) -> None:
    boots = {h: lab.boots(h) for h in ("srv", "w1", "w2")}
    with Watcher(lab) as watch:
        res = reboot(lab, env, "--on", "@agent")
    assert res.returncode == 0, res.stderr
    rows = {r["host"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {"w1", "w2"} and all(
        r["outcome"] == "ok" for r in rows.values()
    )
    assert {h: lab.boots(h) - boots[h] for h in boots} == {"srv": 0, "w1": 1, "w2": 1}
    # never both cordoned; w1 first, then w2
    assert all(len(s) <= 1 for s in watch.seen), watch.seen
    order = [next(iter(s)) for s in watch.seen if s]
    assert order == ["w1", "w2"], watch.seen
    lines = res.stderr.splitlines()
    w1_done = next(i for i, ln in enumerate(lines) if "w1: done" in ln)
    w2_cordon = next(i for i, ln in enumerate(lines) if "w2: cordon" in ln)
    assert w1_done < w2_cordon, res.stderr


def test_a_node_that_does_not_come_back_stops_the_run(
    lab: Lab, env: dict[str, str]
) -> None:
    """w1's next boot runs a closure whose k3s never joins: the run stops at w1 (exit 1,
    one line naming it and why) and w2 is not touched."""
    good = lab.run("w1", ["readlink", "-f", PROFILE]).stdout.strip()
    bad = lab.closure("w1", fault="join")
    lab.copy_closure("w1", bad)
    assert lab.run("w1", ["nix-env", "-p", PROFILE, "--set", bad]).returncode == 0
    w2_boots = lab.boots("w2")
    try:
        res = subprocess.run(
            [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path),
             "reboot", "w1", "w2", "--check-timeout", "10", "--boot-timeout", "60"],
            capture_output=True, text=True, timeout=300, env=env, check=False,
        )  # fmt: skip
        assert res.returncode == 1, res.stdout + res.stderr
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith("hydradeploy: w1: node did not come back Ready"), (
            res.stderr
        )
        assert "node-ready" in last or "node-exists" in last, last
        assert lab.boots("w2") == w2_boots and not cordoned(node(lab, "w2"))
        assert cordoned(node(lab, "w1"))  # the failed host is left as it is
    finally:
        lab.run("w1", ["nix-env", "-p", PROFILE, "--set", good])
        boots = lab.boots("w1")
        lab.reboot("w1")
        deadline = time.monotonic() + 60
        while lab.boots("w1") == boots and time.monotonic() < deadline:
            time.sleep(0.2)
        lab.wait_booted("w1")
        lab.run("srv", ["k3s", "kubectl", "uncordon", "w1"])


def deploy_boot_reboot(lab: Lab, env: dict[str, str], host: str, closure: str,
                       *extra: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path),
         "deploy", host, f"--closure={host}={closure}", "--confirm-timeout", "5",
         "--check-timeout", "15", *extra],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip


def test_deploy_reboot_needs_mode_boot(lab: Lab, env: dict[str, str]) -> None:
    res = deploy_boot_reboot(lab, env, "w2", lab.closure("w2"), "--reboot")
    assert res.returncode == 2 and "--reboot needs --mode boot" in res.stderr, (
        res.stderr
    )


def test_deploy_mode_boot_reboot_runs_the_new_generation(
    lab: Lab, env: dict[str, str]
) -> None:
    new = lab.closure("w2")
    boots = lab.boots("w2")
    res = deploy_boot_reboot(
        lab, env, "w2", new, "--mode", "boot", "--reboot", "--output", "json"
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["deploy"]["outcome"] == "ok" and [
        r["outcome"] for r in doc["reboot"]
    ] == ["ok"]
    assert lab.boots("w2") == boots + 1
    assert (
        lab.run("w2", ["readlink", "-f", "/run/current-system"]).stdout.strip() == new
    )
    assert lab.node_ready("w2") and not cordoned(node(lab, "w2"))


def test_deploy_mode_boot_reboot_rolls_back_a_closure_that_never_joins(
    lab: Lab, env: dict[str, str]
) -> None:
    old_gen, old = (
        generation(lab, "w2"),
        lab.run("w2", ["readlink", "-f", PROFILE]).stdout.strip(),
    )
    bad = lab.closure("w2", fault="join")
    boots = lab.boots("w2")
    res = deploy_boot_reboot(
        lab, env, "w2", bad, "--mode", "boot", "--reboot", "--output", "json"
    )
    assert res.returncode == 1, res.stdout + res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("hydradeploy: w2: node did not come back Ready"), last
    assert "rolled back to generation" in last and "healthy" in last, last
    doc = json.loads(res.stdout)
    ((dep,), (row,)) = doc["deploy"]["hosts"], doc["reboot"]
    assert (
        row["steps"][-3:] == ["wait-boot", "checks", "uncordon"]
        and "rollback" in row["steps"]
    )
    assert lab.boots("w2") == boots + 2  # into the bad generation, then back
    # booted the deployed generation, ended on the one before the deploy
    assert (row["generation_before"], row["generation_after"]) == (
        dep["generation_after"], dep["generation_before"])  # fmt: skip
    assert generation(lab, "w2") == old_gen
    assert (
        lab.run("w2", ["readlink", "-f", "/run/current-system"]).stdout.strip() == old
    )
    assert lab.run("w2", ["readlink", "-f", "/run/booted-system"]).stdout.strip() == old
    assert lab.node_ready("w2") and not cordoned(node(lab, "w2"))


def test_reboot_the_only_server(lab: Lab, env: dict[str, str]) -> None:
    """The server cordons and drains itself (no other server answers), goes down with
    its API, comes back, passes the server checks (readyz) and uncordons itself."""
    boots, gen = lab.boots("srv"), generation(lab, "srv")
    res = reboot(lab, env, "srv")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["outcome"] == "ok" and row["steps"][-1] == "uncordon", row
    assert lab.boots("srv") == boots + 1 and generation(lab, "srv") == gen
    assert lab.node_ready("srv") and not cordoned(node(lab, "srv"))


def test_deploy_mode_boot_then_reboot_runs_the_new_generation(
    lab: Lab, env: dict[str, str]
) -> None:
    """The kernel / driver update path in two commands: nothing changes live, the reboot
    boots the new generation and checks it."""
    running = lab.run("w1", ["readlink", "-f", "/run/current-system"]).stdout.strip()
    new = lab.closure("w1")
    res = deploy_boot_reboot(lab, env, "w1", new, "--mode", "boot")
    assert res.returncode == 0, res.stderr
    assert (
        lab.run("w1", ["readlink", "-f", "/run/current-system"]).stdout.strip()
        == running
    )
    res = reboot(lab, env, "w1")
    assert res.returncode == 0, res.stderr
    for link in ("/run/current-system", "/run/booted-system"):
        assert lab.run("w1", ["readlink", "-f", link]).stdout.strip() == new
    assert lab.node_ready("w1") and not cordoned(node(lab, "w1"))
