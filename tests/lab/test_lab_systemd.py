"""Lab hosts run systemd: switch-to-configuration drives real units (restarting k3s only
when its unit changed), k3s crash loops are systemd's, and reboots boot the system
profile's generation with a new PID 1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from hydradeploy.lab import HostSpec, Lab

pytestmark = pytest.mark.lab

PROFILE = "/nix/var/nix/profiles/system"


@pytest.fixture(scope="module")
def lab(lab_factory) -> Lab:
    return lab_factory([HostSpec("srv", "server"), HostSpec("w1", "agent")])


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def lab_status(lab: Lab) -> dict[str, dict]:
    out = subprocess.run(
        [sys.executable, "-m", "hydradeploy", "lab", "status", "--dir", str(lab.dir),
         "--output", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return {row["host"]: row for row in json.loads(out)}


def switch(
    lab: Lab, host: str, closure: str, action: str = "switch"
) -> subprocess.CompletedProcess[str]:
    lab.copy_closure(host, closure)
    return lab.run(host, [f"{closure}/bin/switch-to-configuration", action], timeout=60)


def k3s(lab: Lab, host: str) -> dict[str, str]:
    out = lab.run(host, ["systemctl", "show", "-p", "ActiveState,SubState,NRestarts,MainPID",
                         "k3s.service"]).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines())


def test_k3s_restarts_only_when_its_unit_changed(lab: Lab) -> None:
    started = lab_status(lab)["w1"]["k3s_started_at"]
    assert started and started.endswith("UTC"), (
        started
    )  # systemd's ActiveEnterTimestamp
    pid = k3s(lab, "w1")["MainPID"]
    time.sleep(1.1)  # ActiveEnterTimestamp has a resolution of one second
    same = switch(lab, "w1", lab.closure("w1"))  # a new build, the same k3s settings
    assert same.returncode == 0, same.stderr
    assert "k3s.service" not in same.stdout + same.stderr
    assert lab_status(lab)["w1"]["k3s_started_at"] == started
    assert k3s(lab, "w1")["MainPID"] == pid
    changed = switch(lab, "w1", lab.closure("w1", fault="labels"))
    assert (
        "restarting the following units: k3s.service" in changed.stderr
    )  # as upstream
    assert lab_status(lab)["w1"]["k3s_started_at"] != started
    assert k3s(lab, "w1")["MainPID"] != pid
    assert switch(lab, "w1", lab.closure("w1")).returncode == 0
    eventually(
        lambda: lab.node_ready("w1") is True, 15, "w1 Ready with its labels again"
    )


def test_a_k3s_that_crashes_is_restarted_by_systemd_until_a_good_closure(
    lab: Lab,
) -> None:
    agent = switch(lab, "w1", lab.closure("w1", fault="crash"))
    assert agent.returncode == 0  # Type=exec: the start itself succeeds
    eventually(
        lambda: int(k3s(lab, "w1")["NRestarts"]) >= 1, 15, "k3s restarted by systemd"
    )
    assert k3s(lab, "w1")["SubState"] in ("auto-restart", "running", "start")
    # A server is Type=notify: its start job fails, and switch-to-configuration says so.
    server = switch(lab, "srv", lab.closure("srv", fault="crash"))
    assert server.returncode == 4, server.stdout + server.stderr
    assert "warning: the following units failed: k3s.service" in server.stderr
    for host in ("srv", "w1"):
        assert switch(lab, host, lab.closure(host)).returncode == 0
        assert k3s(lab, host)["ActiveState"] == "active"
    eventually(lambda: lab.node_ready("w1") is True, 15, "w1 Ready again")


def test_boot_sets_the_next_boot_and_a_reboot_starts_it_with_a_new_pid1(
    lab: Lab,
) -> None:
    running = lab.run("w1", ["readlink", "-f", "/run/current-system"]).stdout.strip()
    new = lab.closure("w1", fault="labels")  # visible after the boot: wrong labels
    lab.copy_closure("w1", new)
    assert lab.run("w1", ["nix-env", "-p", PROFILE, "--set", new]).returncode == 0
    assert switch(lab, "w1", new, "boot").returncode == 0
    # `boot` changes nothing running.
    assert (
        lab.run("w1", ["readlink", "-f", "/run/current-system"]).stdout.strip()
        == running
    )
    leader, boots = lab.leader_pid("w1"), lab.boots("w1")
    cli = subprocess.run(
        [sys.executable, "-m", "hydradeploy", "lab", "reboot", "--dir", str(lab.dir), "w1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert lab.boots("w1") == boots + 1 and lab.leader_pid("w1") not in (None, leader)
    assert lab.run("w1", ["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    for link in ("/run/current-system", "/run/booted-system"):
        assert lab.run("w1", ["readlink", "-f", link]).stdout.strip() == new, link
    assert lab.run("w1", ["systemctl", "is-system-running"]).stdout.strip() == "running"
    log = lab.run("w1", ["tail", "-n1", "/var/lib/hydra-lab/activations.log"]).stdout
    assert log.split()[1:] == ["boot-activation", new, "ok"]

    def labels() -> dict[str, str]:
        for node in lab.nodes():
            if node["metadata"]["name"] == "w1":
                return node["metadata"]["labels"]
        return {}

    eventually(lambda: labels().get("hydra.io/lab-fault") == "wrong-labels", 15,
               "the booted generation's k3s registered")  # fmt: skip
    # Back to a good generation, booted the same way.
    good = lab.closure("w1")
    lab.copy_closure("w1", good)
    assert lab.run("w1", ["nix-env", "-p", PROFILE, "--set", good]).returncode == 0
    lab.reboot("w1")
    eventually(lambda: lab.boots("w1") == boots + 2, 30, "second reboot")
    assert lab.wait_booted("w1") == "running"
    assert (
        lab.run("w1", ["readlink", "-f", "/run/current-system"]).stdout.strip() == good
    )
