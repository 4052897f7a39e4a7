"""The repository's own example cluster in the lab: the microVM host's guests are
checked with it, and `plan`/`status` read the real inventory shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab(lab_factory):
    return lab_factory(inventory=REPO / "hosts" / "inventory.toml")


def hd(lab, state, *args):
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
        timeout=240,
        env={**os.environ, "XDG_STATE_HOME": str(state)},
        check=False,
    )
    assert "Traceback" not in res.stderr
    return res


def test_microvm_host_deploy_checks_its_guests(lab, tmp_path):
    path = lab.closure("hydra-amd")
    res = hd(
        lab,
        tmp_path,
        "deploy",
        "@microvm-host",
        f"--closure=hydra-amd={path}",
        "--confirm-timeout",
        "5",
        "--check-timeout",
        "30",
        "--output",
        "json",
    )
    assert res.returncode == 0, res.stderr
    (amd,) = json.loads(res.stdout)["hosts"]
    assert (
        amd["host"] == "hydra-amd"
        and amd["outcome"] == "deployed"
        and amd["ssh_connections"] == 3  # working, nix copy's, confirming
    )
    res = hd(lab, tmp_path, "check", "hydra-amd", "--output", "json")
    assert res.returncode == 0, res.stdout
    checks = {c["check"]: c["ok"] for c in json.loads(res.stdout)[0]["checks"]}
    for vm in ("hydra-amd-vm1", "hydra-amd-vm2"):
        for name in ("node-exists", "node-ready", "labels", "taints"):
            assert checks[f"microvm:{vm}:{name}"] is True


def test_a_guest_that_did_not_rejoin_is_named(lab, tmp_path):
    path = lab.closure(
        "hydra-amd", fault="join"
    )  # neither the host nor its guests register
    res = hd(
        lab,
        tmp_path,
        "deploy",
        "hydra-amd",
        f"--closure=hydra-amd={path}",
        "--confirm-timeout",
        "5",
        "--check-timeout",
        "6",
        "--output",
        "json",
    )
    assert res.returncode == 1
    (amd,) = json.loads(res.stdout)["hosts"]
    failed = {c["check"] for c in amd["failed_checks"]}
    assert {
        "node-ready",
        "microvm:hydra-amd-vm1:node-ready",
        "microvm:hydra-amd-vm2:node-ready",
    } <= failed, failed
    assert amd["outcome"] == "rolled back" and amd["healthy_after_rollback"] is True


def test_status_of_the_example_cluster(lab, tmp_path):
    res = hd(lab, tmp_path, "status", "--output", "json")
    assert res.returncode == 0
    rows = {r["host"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {"hydra-ai", "hydra-compute", "hydra-amd"}
    assert rows["hydra-ai"]["gpus_expected"] == {"nvidia.com/gpu": 2}
    assert rows["hydra-compute"]["gpus_allocatable"] == {"nvidia.com/gpu": 2}
    assert rows["hydra-amd"]["gpus_allocatable"] == {"amd.com/gpu": 1}
    assert all(r["node_ready"] and r["k3s_active"] for r in rows.values())
