"""Labels and taints reconciled from the inventory (deploy/node_sync.py): the pure
planning on node JSON, then in the lab through `deploy`, `nodes sync` and `plan`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hydradeploy.deploy import node_sync
from hydradeploy.errors import UserError
from hydradeploy.lab import HostSpec
from hydradeploy.lab.inventory_out import dumps


def node(labels: dict[str, str], taints: list[dict[str, str]],
         annotations: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"metadata": {"name": "w1", "labels": labels, "annotations": annotations or {}},
            "spec": {"taints": taints}}  # fmt: skip


K3S_LABELS = {"kubernetes.io/hostname": "w1", "node.kubernetes.io/instance-type": "k3s"}


def test_first_sync_sets_without_removing_and_records_what_it_manages() -> None:
    n = node({**K3S_LABELS, "a.io/x": "1", "nfd.io/cpu": "avx"},
             [{"key": "gpu", "value": "old", "effect": "NoSchedule"},
              {"key": "gpu", "effect": "NoExecute"},
              {"key": "other.io/op", "effect": "NoSchedule"}])  # fmt: skip
    plan = node_sync.plan_node(
        "w1", n, {"a.io/x": "2", "b.io/y": "3"}, ["gpu=new:NoSchedule"]
    )
    texts = [str(c) for c in plan.changes]
    assert "w1: change label a.io/x=2 (was 1)" in texts
    assert "w1: add label b.io/y=3" in texts
    assert "w1: change taint gpu=new:NoSchedule (was gpu=old:NoSchedule)" in texts
    # gpu:NoExecute sits on a key the inventory taints: adopted and removed.
    assert "w1: remove taint gpu:NoExecute" in texts
    assert not any(
        "nfd.io" in t or "other.io" in t or "kubernetes.io" in t for t in texts
    )
    assert plan.commands == [
        ["k3s", "kubectl", "label", "node", "w1", "--overwrite", "a.io/x=2", "b.io/y=3"],
        ["k3s", "kubectl", "taint", "node", "w1", "--overwrite", "gpu:NoExecute-",
         "gpu=new:NoSchedule"],
        ["k3s", "kubectl", "annotate", "node", "w1", "--overwrite",
         "hydra.io/managed-labels=a.io/x,b.io/y", "hydra.io/managed-taints=gpu:NoSchedule"],
    ]  # fmt: skip


def test_later_sync_removes_only_what_it_managed() -> None:
    n = node({**K3S_LABELS, "a.io/x": "1", "gone.io/z": "1", "nfd.io/cpu": "avx"},
             [{"key": "gpu", "effect": "NoSchedule"}, {"key": "op.io/t", "effect": "NoSchedule"}],
             {node_sync.MANAGED_LABELS: "a.io/x,gone.io/z",
              node_sync.MANAGED_TAINTS: "gpu:NoSchedule"})  # fmt: skip
    plan = node_sync.plan_node("w1", n, {"a.io/x": "1"}, [])
    assert [str(c) for c in plan.changes] == [
        "w1: remove label gone.io/z",
        "w1: remove taint gpu:NoSchedule",
    ]
    assert plan.commands[0] == ["k3s", "kubectl", "label", "node", "w1", "--overwrite",
                                "gone.io/z-"]  # fmt: skip
    assert plan.commands[1] == ["k3s", "kubectl", "taint", "node", "w1", "--overwrite",
                                "gpu:NoSchedule-"]  # fmt: skip


def test_nothing_to_do_means_no_commands() -> None:
    n = node({"a.io/x": "1"}, [{"key": "gpu", "value": "v", "effect": "NoSchedule"}],
             {node_sync.MANAGED_LABELS: "a.io/x", node_sync.MANAGED_TAINTS: "gpu:NoSchedule"})  # fmt: skip
    plan = node_sync.plan_node("w1", n, {"a.io/x": "1"}, ["gpu=v:NoSchedule"])
    assert plan.changes == [] and plan.commands == []


@pytest.mark.parametrize(
    ("labels", "taints"),
    [({"a.io/x": "1; rm -rf /"}, []), ({"bad key": "1"}, []), ({}, ["gpu=$(x):NoSchedule"]),
     ({}, ["gpu=v:Sometimes"])],
)  # fmt: skip
def test_invalid_values_never_reach_an_argv(
    labels: dict[str, str], taints: list[str]
) -> None:
    with pytest.raises(UserError, match="w1"):
        node_sync.plan_node("w1", node({}, []), labels, taints)


# ----------------------------------------------------------------------------- lab

lab_marks = [pytest.mark.lab, pytest.mark.slow]
# a short stability window: the path runs, the suite stays within CI\'s time
FAST = ["--confirm-timeout", "5", "--check-timeout", "30", "--stability-window", "2"]


@pytest.fixture(scope="module")
def lab(lab_factory):
    return lab_factory([
        HostSpec("srv", "server"),
        HostSpec("w1", "agent", gpus={"nvidia": 1}, labels={"hydra.io/team": "a"}),
    ])  # fmt: skip


@pytest.fixture(scope="module")
def state_home(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


def hd(lab, state_home: Path, *args: str) -> tuple[int, Any, str]:
    res = subprocess.run(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path), *args],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "XDG_STATE_HOME": str(state_home)},
    )  # fmt: skip
    assert "Traceback" not in res.stderr, res.stderr
    data = json.loads(res.stdout) if "--output" in args and res.stdout.strip() else None
    return res.returncode, data, res.stderr


def edit_host(lab, host: str, **fields: Any) -> None:
    """Change a host's labels/taints in the lab inventory (what the user edits)."""
    data = tomllib.loads(lab.inventory_path.read_text())
    data["hosts"][host].update(fields)
    lab.inventory_path.write_text(dumps(data))


def kube_node(lab, name: str) -> dict[str, Any]:
    proc = lab.run("srv", ["k3s", "kubectl", "get", "node", name, "-o", "json"])
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def node_taints(lab, name: str) -> set[str]:
    return {
        f"{t['key']}={t['value']}:{t['effect']}"
        if t.get("value")
        else f"{t['key']}:{t['effect']}"
        for t in kube_node(lab, name)["spec"].get("taints", [])
        if not t["key"].startswith("node.kubernetes.io/")
    }


def deploy(lab, state_home: Path, host: str) -> dict[str, Any]:
    path = lab.closure(host)
    rc, data, err = hd(lab, state_home, "deploy", host, f"--closure={host}={path}", *FAST,
                       "--output", "json")  # fmt: skip
    assert rc == 0, err
    (rep,) = data["hosts"]
    assert rep["outcome"] == "deployed", rep
    return rep


def sync_step(rep: dict[str, Any]) -> str:
    (step,) = [s for s in rep["steps"] if s["step"] == "node-sync"]
    assert step["ok"], step
    return str(step["detail"])


@pytest.mark.lab
@pytest.mark.slow
def test_taint_added_changed_removed_reaches_the_node_each_time(
    lab, state_home
) -> None:
    edit_host(lab, "w1", taints=["hydra.io/gpu=a:NoSchedule"])
    rep = deploy(lab, state_home, "w1")
    assert "add taint hydra.io/gpu=a:NoSchedule" in sync_step(rep)
    assert node_taints(lab, "w1") == {"hydra.io/gpu=a:NoSchedule"}
    edit_host(lab, "w1", taints=["hydra.io/gpu=b:NoExecute"])
    rep = deploy(lab, state_home, "w1")
    assert node_taints(lab, "w1") == {"hydra.io/gpu=b:NoExecute"}
    assert "remove taint hydra.io/gpu=a:NoSchedule" in sync_step(rep)
    edit_host(lab, "w1", taints=[])
    rep = deploy(lab, state_home, "w1")
    assert node_taints(lab, "w1") == set()
    assert "rolled back" not in json.dumps(rep)


@pytest.mark.lab
@pytest.mark.slow
def test_label_removed_from_the_inventory_leaves_the_node_others_stay(
    lab, state_home
) -> None:
    # An operator / node-feature-discovery label, set through the API.
    op = lab.run("srv", ["k3s", "kubectl", "label", "node", "w1",
                         "feature.node.kubernetes.io/cpu-model.vendor_id=AMD"])  # fmt: skip
    assert op.returncode == 0, op.stderr
    edit_host(lab, "w1", labels={"hydra.io/team": "a", "hydra.io/extra": "x"})
    deploy(lab, state_home, "w1")
    assert kube_node(lab, "w1")["metadata"]["labels"]["hydra.io/extra"] == "x"
    edit_host(lab, "w1", labels={"hydra.io/team": "b"})
    rep = deploy(lab, state_home, "w1")
    labels = kube_node(lab, "w1")["metadata"]["labels"]
    assert "hydra.io/extra" not in labels and labels["hydra.io/team"] == "b"
    assert "remove label hydra.io/extra" in sync_step(rep)
    assert labels["feature.node.kubernetes.io/cpu-model.vendor_id"] == "AMD"
    assert labels["node.kubernetes.io/instance-type"] == "k3s"  # the cloud controller's


@pytest.mark.lab
@pytest.mark.slow
def test_nodes_sync_and_plan_show_and_make_the_changes(lab, state_home) -> None:
    edit_host(
        lab, "w1", labels={"hydra.io/team": "c"}, taints=["hydra.io/x=y:NoSchedule"]
    )
    rc, data, err = hd(lab, state_home, "plan", "w1", "--output", "json")
    assert rc == 0, err
    (w1,) = data["hosts"]
    assert "w1: change label hydra.io/team=c (was b)" in w1["node_changes"]
    assert "w1: add taint hydra.io/x=y:NoSchedule" in w1["node_changes"]
    rc, data, err = hd(
        lab, state_home, "nodes", "sync", "w1", "--dry-run", "--output", "json"
    )
    assert rc == 0, err
    assert {c["text"] for c in data["nodes"][0]["changes"]} == set(w1["node_changes"])
    assert kube_node(lab, "w1")["metadata"]["labels"]["hydra.io/team"] == "b"  # dry run
    rc, data, err = hd(lab, state_home, "nodes", "sync", "--output", "json")
    assert rc == 0, err
    assert kube_node(lab, "w1")["metadata"]["labels"]["hydra.io/team"] == "c"
    assert node_taints(lab, "w1") == {"hydra.io/x=y:NoSchedule"}
    rc, data, err = hd(lab, state_home, "nodes", "sync", "w1", "--output", "json")
    assert rc == 0 and data["nodes"][0]["changes"] == [], err
    rc, _, err = hd(lab, state_home, "nodes", "sync", "nope")
    assert rc == 2 and "nope" in err


@pytest.mark.lab
@pytest.mark.slow
def test_stale_lease_is_rolled_back_naming_the_lease(lab, state_home) -> None:
    # A label changed and synced without a deploy: the running closure's --node-label
    # still has the old value, which k3s merges again when the rollback restarts it.
    edit_host(lab, "w1", labels={"hydra.io/team": "rollback"}, taints=[])
    rc, _, err = hd(lab, state_home, "nodes", "sync", "w1")
    assert rc == 0, err
    bad = lab.closure("w1", fault="lease")
    rc, data, _err = hd(lab, state_home, "deploy", "w1", f"--closure=w1={bad}",
                       "--confirm-timeout", "5", "--check-timeout", "8", "--output", "json")  # fmt: skip
    assert rc == 1
    (w1,) = data["hosts"]
    assert w1["outcome"] == "rolled back" and w1["failed_step"] == "checks", w1
    ready = [c for c in w1["failed_checks"] if c["check"] == "node-ready"]
    assert ready and "stale Lease kube-node-lease/w1" in ready[0]["detail"], w1
    assert w1["healthy_after_rollback"] is True, w1
    assert kube_node(lab, "w1")["metadata"]["labels"]["hydra.io/team"] == "rollback"


@pytest.mark.lab
@pytest.mark.slow
def test_a_closure_that_leaves_k3s_alone_is_judged_from_the_lease(
    lab, state_home
) -> None:
    """A new generation whose k3s settings did not change: switch-to-configuration leaves
    k3s.service running (k3s_started_at unchanged), and the verdict comes from the
    node's Lease, renewed after the activation, not from a settle wait."""

    def started() -> str:
        (w1,) = [h for h in lab.status() if h["host"] == "w1"]
        return str(w1["k3s_started_at"])

    # earlier tests may leave w1 on a closure of other settings: start from one of now's
    first = lab.closure("w1")
    rc, _data, err = hd(lab, state_home, "deploy", "w1", f"--closure=w1={first}", *FAST,
                        "--output", "json")  # fmt: skip
    assert rc == 0, err
    new = lab.closure("w1")  # a new build (its own revision), the same k3s settings
    assert new != first
    before = started()
    t = time.monotonic()
    rc, data, err = hd(lab, state_home, "deploy", "w1", f"--closure=w1={new}", *FAST,
                       "--output", "json")  # fmt: skip
    took = time.monotonic() - t
    assert rc == 0, err
    assert (
        lab.run("w1", ["readlink", "-f", "/run/current-system"]).stdout.strip() == new
    )
    assert started() == before  # k3s was not restarted
    (w1,) = data["hosts"]
    checks = [s for s in w1["steps"] if s["step"] == "checks"]
    assert checks and checks[0]["ok"]
    print(
        f"new closure, k3s not restarted: checks {checks[0]['seconds']:.1f} s, "
        f"whole deploy {took:.1f} s"
    )
