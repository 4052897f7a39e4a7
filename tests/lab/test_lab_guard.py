"""The deploy's rollback guard on hosts booted with systemd: a transient unit that
outlives the deployer, its SSH session and sshd itself (deploy/watchdog.py)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from hydradeploy.deploy import watchdog
from hydradeploy.deploy.lock import LOCK_DIR, RUNS_DIR
from hydradeploy.deploy.remote import script
from hydradeploy.lab import HostSpec, Lab
from hydradeploy.lab.closure import BROKEN_UNIT

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PROFILE = "/nix/var/nix/profiles/system"
# a short stability window: the path runs, the suite stays within CI\'s time
FAST = ["--confirm-timeout", "5", "--check-timeout", "20", "--stability-window", "2"]


@pytest.fixture(scope="module")
def lab(lab_factory) -> Lab:
    return lab_factory([HostSpec("srv", "server"), HostSpec("w1", "agent")])


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path_factory.mktemp("state"))}


def deploy_argv(lab: Lab, *args: str) -> list[str]:
    return [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path),
            "deploy", *args]  # fmt: skip


def state(lab: Lab, host: str) -> tuple[str, str]:
    """(profile link, running closure)."""
    out = lab.run(
        host, ["sh", "-c", f"readlink {PROFILE}; readlink -f /run/current-system"]
    )
    link, current = out.stdout.split()
    return link, current


def unit_facts(lab: Lab, host: str, unit: str, *props: str) -> dict[str, str]:
    out = lab.run(host, ["systemctl", "show", "-p", ",".join(props), unit]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.3)


def test_guard_is_a_transient_unit_that_rolls_back_after_the_deployer_is_killed(
    lab: Lab, env
) -> None:
    before = state(lab, "w1")
    new = lab.closure("w1")
    proc = subprocess.Popen(
        deploy_argv(lab, "w1", f"--closure=w1={new}", *FAST),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    unit = ""
    for line in proc.stderr:
        if "w1: activate" in line:
            # The progress line says how the guard runs.
            assert "guard: systemd-run unit hydradeploy-guard-" in line, line
            unit = line.split("systemd-run unit ")[1].split()[0]
            proc.send_signal(signal.SIGSTOP)  # frozen before it can confirm
            break
    assert unit, "no activate step seen"
    run_dir = f"{RUNS_DIR}/{unit.removeprefix('hydradeploy-guard-')}"
    try:
        eventually(lambda: lab.run("w1", ["test", "-e", f"{run_dir}/activated"]).returncode == 0,
                   30, "the guard activated the new closure")  # fmt: skip
        assert state(lab, "w1")[1] == new
        facts = unit_facts(lab, "w1", unit, "Transient", "ControlGroup", "ActiveState")
        assert facts["Transient"] == "yes" and facts["ActiveState"] == "active", facts
        assert facts["ControlGroup"].endswith(f"/{unit}.service"), facts  # not sshd's
    finally:
        proc.kill()  # SIGKILL: no cleanup, its SSH sessions just drop
        proc.wait(timeout=10)
    eventually(lambda: lab.run("w1", ["test", "-e", f"{run_dir}/rolledback"]).returncode == 0,
               30, "w1 rolled back by its guard")  # fmt: skip
    assert state(lab, "w1") == before
    log = lab.run("w1", ["cat", f"{run_dir}/guard.log"]).stdout
    assert (
        "no confirmation within 5s" in log and "rollback finished with status 0" in log
    ), log
    eventually(lambda: lab.node_ready("w1") is True, 20, "w1 Ready again")


def test_guard_survives_an_activation_that_restarts_sshd(lab: Lab, env) -> None:
    sshd_before = unit_facts(lab, "w1", "ssh.service", "MainPID")["MainPID"]
    new = lab.closure("w1", restart_sshd=True)
    res = subprocess.run(
        deploy_argv(lab, "w1", f"--closure=w1={new}", *FAST), capture_output=True,
        text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert state(lab, "w1")[1] == new
    after = unit_facts(lab, "w1", "ssh.service", "MainPID", "ActiveState")
    assert after["ActiveState"] == "active" and after["MainPID"] != sshd_before, after
    unit = res.stderr.split("systemd-run unit ")[1].split()[0]
    run_dir = f"{RUNS_DIR}/{unit.removeprefix('hydradeploy-guard-')}"
    activation = lab.run("w1", ["cat", f"{run_dir}/activation.log"]).stdout
    assert "restarting the following units: ssh.service" in activation, activation
    assert "confirmed" in lab.run("w1", ["cat", f"{run_dir}/guard.log"]).stdout


def test_guard_outlives_the_ssh_session_that_armed_it(lab: Lab) -> None:
    """Arm a guard over a plain `ssh` session that ends at once: the guard still
    activates, and, never confirmed, rolls the host back by itself."""
    link, old = state(lab, "w1")
    new = lab.closure("w1")
    lab.copy_closure("w1", new)
    args = watchdog.GuardArgs(
        run_id=f"session-{os.getpid()}", action="activate", new=new, mode="switch",
        old_generation=int(link.split("-")[1]), old=old, confirm_timeout=3,
        lock_dir=LOCK_DIR,
    )  # fmt: skip
    ssh = ["ssh", "-i", str(lab.key_path), "-o", "StrictHostKeyChecking=yes",
           "-o", f"UserKnownHostsFile={lab.known_hosts_path}", "-o", "BatchMode=yes",
           f"root@{lab.address('w1')}", shlex.join(script(watchdog.LAUNCH, *args.argv()))]  # fmt: skip
    armed = subprocess.run(ssh, input=watchdog.GUARD, capture_output=True, text=True,
                           timeout=30, check=False)  # fmt: skip
    assert armed.returncode == 0, armed.stderr
    assert (
        armed.stdout.strip() == f"hydradeploy-guard-{args.state_dir.rsplit('/', 1)[1]}"
    )
    eventually(
        lambda: state(lab, "w1")[1] == new, 20, "activated after the session ended"
    )
    eventually(lambda: lab.run("w1", ["test", "-e", f"{args.state_dir}/rolledback"]).returncode == 0,
               20, "rolled back, never confirmed")  # fmt: skip
    assert state(lab, "w1") == (link, old)
    rolled = lab.run("w1", ["cat", f"{args.state_dir}/rolledback"]).stdout.split()
    assert rolled[:2] == ["0", "watchdog"], rolled


def test_a_guard_whose_profile_step_fails_activates_nothing_and_says_so(
    lab: Lab,
) -> None:
    """The guard sets the profile itself (issue 15); when that fails (here: a store path
    the host lacks) it activates nothing, leaves the profile where it was and decides
    `rollback` at once, so the tool's wait for the rollback ends immediately."""
    link, old = state(lab, "w1")
    missing = "/nix/store/" + "0" * 32 + "-not-copied"
    args = watchdog.GuardArgs(
        run_id=f"profile-{os.getpid()}", action="activate", new=missing, mode="switch",
        old_generation=int(link.split("-")[1]), old=old, confirm_timeout=30,
        lock_dir=LOCK_DIR, set_profile="set",
    )  # fmt: skip
    ssh = ["ssh", "-i", str(lab.key_path), "-o", "StrictHostKeyChecking=yes",
           "-o", f"UserKnownHostsFile={lab.known_hosts_path}", "-o", "BatchMode=yes",
           f"root@{lab.address('w1')}", shlex.join(script(watchdog.LAUNCH, *args.argv()))]  # fmt: skip
    armed = subprocess.run(ssh, input=watchdog.GUARD, capture_output=True, text=True,
                           timeout=30, check=False)  # fmt: skip
    assert armed.returncode == 0, armed.stderr
    done = f"{args.state_dir}/done"
    eventually(
        lambda: lab.run("w1", ["test", "-e", done]).returncode == 0, 20, "guard ended"
    )
    st = watchdog.parse_status(
        lab.run(
            "w1", ["sh", "-c", watchdog.STATUS, "x", args.state_dir, "activated", "1"]
        ).stdout
    )
    assert st.activated is not None and st.activated[0] != 0, st
    assert st.decision == "rollback" and (st.rolledback or "").startswith(
        "0 profile"
    ), st
    assert "setting the system profile failed" in st.last["activation"], st
    assert state(lab, "w1") == (link, old)


def test_a_closure_whose_sshd_config_breaks_sshd_is_rolled_back_by_the_host(
    lab: Lab, env
) -> None:
    before = state(lab, "w1")
    bad = lab.closure("w1", fault="sshd")
    res = subprocess.run(
        deploy_argv(lab, "w1", f"--closure=w1={bad}", *FAST), capture_output=True,
        text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    # ssh.service really failed on the bad closure (sshd -t refused its config) ...
    assert (
        "warning: the following units failed: ssh.service"
        in lab.run("w1", ["sh", "-c", f"cat {RUNS_DIR}/*/activation.log"]).stdout
    )
    # ... and the host is back on its old generation with a working sshd.
    assert state(lab, "w1") == before
    assert (
        unit_facts(lab, "w1", "ssh.service", "ActiveState")["ActiveState"] == "active"
    )
    assert lab.run("w1", ["systemctl", "is-system-running"]).stdout.strip() == "running"


def test_a_closure_that_leaves_a_unit_failed_is_rolled_back(lab: Lab, env) -> None:
    """A service of the new generation fails to start (ssh and k3s fine): the system
    turns degraded, the deploy fails naming the unit, the host goes back and runs again."""
    before = state(lab, "w1")
    bad = lab.closure("w1", fault="unit")
    res = subprocess.run(
        deploy_argv(lab, "w1", f"--closure=w1={bad}", "--output", "json", *FAST),
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert BROKEN_UNIT in res.stdout, res.stdout  # the report names the unit
    assert state(lab, "w1") == before
    assert lab.run("w1", ["systemctl", "is-system-running"]).stdout.strip() == "running"


def test_deploy_mode_boot_then_a_reboot_runs_the_new_generation(lab: Lab, env) -> None:
    """The kernel/driver update path: `deploy --mode boot` changes nothing running; the
    reboot boots the new generation (here `lab reboot`; `hydradeploy reboot` does the same cluster-safely, test_lab_reboot.py)."""
    link, running = state(lab, "w1")
    new = lab.closure("w1")
    res = subprocess.run(
        deploy_argv(lab, "w1", f"--closure=w1={new}", "--mode", "boot", *FAST),
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    after_link, after_running = state(lab, "w1")
    assert after_running == running and after_link != link  # profile moved, system not
    boots = lab.boots("w1")
    lab.reboot("w1")
    eventually(lambda: lab.boots("w1") == boots + 1, 30, "w1 boots again")
    assert lab.wait_booted("w1") == "running"
    assert state(lab, "w1") == (after_link, new)
    assert lab.run("w1", ["readlink", "-f", "/run/booted-system"]).stdout.strip() == new
    check = subprocess.run(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path), "check",
         "w1", "--check-timeout", "30"],
        capture_output=True, text=True, timeout=90, env=env, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
