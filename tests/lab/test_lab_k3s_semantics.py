"""The lab's k3s follows upstream k3s/Kubernetes (each behaviour's source is cited in
lab/guest/k3s_nodes.py and k3s_sim.py): registration-time taints, --node-label merged
and never removed, the cloud controller's labels and taint, status posted on change or
every nodeStatusReportFrequency, the Lease, the node lifecycle controller, GPUs at 0
until the device plugin registers. First on the registry directly, then in a lab."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from hydradeploy.lab.guest import k3s_nodes, k3s_sim
from hydradeploy.versions import KUBERNETES_VERSION

SETTINGS: dict[str, Any] = {
    "node_name": "w1", "role": "agent", "address": "198.18.0.11",
    "labels": {"hydra.io/gpu-vendor": "nvidia", "hydra.io/gpu-count": "2"},
    "taints": ["hydra.io/gpu=true:NoSchedule"], "gpus": {"nvidia.com/gpu": 2},
    "microvms": [], "kubelet_version": f"v{KUBERNETES_VERSION}+k3s1", "fault": None,
}  # fmt: skip


def registry(tmp_path: Path, grace: float = 5.0) -> k3s_nodes.Registry:
    return k3s_nodes.Registry(
        grace=grace, path=tmp_path / "nodes.json", lease_duration=4.0
    )


def register(reg: k3s_nodes.Registry, settings: dict[str, Any]) -> dict[str, Any]:
    (node,) = k3s_sim.node_objects(settings)
    reg.register(node, k3s_sim.node_labels(settings))
    reg.post_status("w1", node["status"], report=True)
    reg.renew_lease("w1")
    return node


def taints(node: dict[str, Any] | None) -> set[str]:
    assert node is not None
    return {
        f"{t['key']}={t.get('value', '')}:{t['effect']}"
        for t in node["spec"].get("taints", [])
    }


def test_taints_only_at_first_registration_labels_merged_never_removed(
    tmp_path: Path,
) -> None:
    reg = registry(tmp_path)
    register(reg, SETTINGS)
    # A later k3s start with another taint flag, a new label and one label flag dropped.
    changed = {**SETTINGS, "taints": ["hydra.io/other=x:NoExecute"],
               "labels": {"hydra.io/gpu-vendor": "amd", "hydra.io/new": "yes"}}  # fmt: skip
    (node,) = k3s_sim.node_objects(changed)
    assert reg.register(node, k3s_sim.node_labels(changed)) is False
    now = reg.render("w1")
    assert now is not None
    labels = now["metadata"]["labels"]
    assert labels["hydra.io/new"] == "yes"  # added
    assert labels["hydra.io/gpu-vendor"] == "amd"  # flag value wins
    assert labels["hydra.io/gpu-count"] == "2"  # dropped flag: stays
    assert "hydra.io/gpu=true:NoSchedule" in taints(now)
    assert not any(t.startswith("hydra.io/other") for t in taints(now))


def test_cloud_controller_initialises_new_nodes(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    register(reg, SETTINGS)
    fresh = reg.nodes["w1"]["node"]
    assert any(t["key"] == k3s_nodes.UNINITIALIZED for t in fresh["spec"]["taints"])
    assert "node.kubernetes.io/instance-type" not in fresh["metadata"]["labels"]
    time.sleep(k3s_nodes.CLOUD_INIT_SECONDS + 0.1)
    node = reg.render("w1")
    assert node is not None
    assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "k3s"
    assert node["metadata"]["labels"]["beta.kubernetes.io/instance-type"] == "k3s"
    assert node["spec"]["providerID"] == "k3s://w1"
    assert taints(node) == {"hydra.io/gpu=true:NoSchedule"}


def test_status_is_posted_on_change_or_when_the_report_period_passed(
    tmp_path: Path,
) -> None:
    reg = registry(tmp_path)
    node = register(reg, SETTINGS)
    first = reg.nodes["w1"]["status_at"]
    time.sleep(0.05)
    assert reg.post_status("w1", node["status"], report=False) is False
    assert reg.nodes["w1"]["status_at"] == first
    zero = json.loads(json.dumps(node["status"]))
    zero["allocatable"]["nvidia.com/gpu"] = "0"
    assert reg.post_status("w1", zero, report=False) is True  # a change is posted
    assert reg.post_status("w1", zero, report=True) is True  # the period passed
    assert reg.post_status("nope", zero, report=True) is None


def test_lease_keeps_a_node_ready_without_status_posts(tmp_path: Path) -> None:
    reg = registry(tmp_path, grace=0.6)
    register(reg, SETTINGS)
    for _ in range(4):
        time.sleep(0.3)
        reg.renew_lease("w1")
    node = reg.render("w1")
    assert node is not None
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"  # 1.2 s > grace, but the Lease was renewed
    lease = reg.lease("w1")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "w1"
    assert lease["spec"]["leaseDurationSeconds"] == 4
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"


def test_lifecycle_controller_marks_silent_nodes_unknown_and_taints_them(
    tmp_path: Path,
) -> None:
    reg = registry(tmp_path, grace=0.3)
    node = register(reg, SETTINGS)
    time.sleep(0.5)
    gone = reg.render("w1")
    assert gone is not None
    ready = next(c for c in gone["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert {"node.kubernetes.io/unreachable=:NoSchedule",
            "node.kubernetes.io/unreachable=:NoExecute"} <= taints(gone)  # fmt: skip
    # A Lease renewal alone does not make it Ready; the kubelet sees the API's copy
    # differ from its own status and posts it.
    reg.renew_lease("w1")
    assert reg.post_status("w1", node["status"], report=False) is True
    back = reg.render("w1")
    assert back is not None
    ready = next(c for c in back["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert not any(t.startswith("node.kubernetes.io/unreachable") for t in taints(back))


def test_extended_resources_zeroed_on_reregistration_until_the_plugin_is_back(
    tmp_path: Path,
) -> None:
    reg = registry(tmp_path)
    node = register(reg, SETTINGS)
    reg.register(node, k3s_sim.node_labels(SETTINGS))  # a kubelet restart
    after = reg.render("w1")
    assert after is not None and after["status"]["allocatable"]["nvidia.com/gpu"] == "0"
    started = time.time()
    assert (
        k3s_sim.status_now(node, started, 5.0)["allocatable"]["nvidia.com/gpu"] == "0"
    )
    assert (
        k3s_sim.status_now(node, started - 6, 5.0)["allocatable"]["nvidia.com/gpu"]
        == "2"
    )


def test_patch_is_a_merge_patch(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    register(reg, SETTINGS)
    reg.patch("w1", {"metadata": {"labels": {"a.io/x": "1", "hydra.io/gpu-count": None},
                                  "annotations": {"hydra.io/managed-labels": "a.io/x"}}})  # fmt: skip
    node = reg.render("w1")
    assert node is not None
    assert node["metadata"]["labels"]["a.io/x"] == "1"
    assert "hydra.io/gpu-count" not in node["metadata"]["labels"]
    assert node["metadata"]["annotations"]["hydra.io/managed-labels"] == "a.io/x"
    reg.patch("w1", {"spec": {"taints": []}})
    assert taints(reg.render("w1")) == set()
    assert reg.patch("nope", {}) is None


def test_node_and_lease_validate_against_the_pinned_kubernetes(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    register(reg, SETTINGS)
    node, lease = reg.render("w1"), reg.lease("w1")
    assert node is not None and lease is not None
    for obj in (node, lease):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{KUBERNETES_VERSION}+k3s1"


def test_validation_would_catch_a_malformed_node(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    register(reg, SETTINGS)
    node = reg.render("w1")
    assert node is not None
    node["spec"]["taints"] = [{"key": "x", "effect": 3}]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(node, KUBERNETES_VERSION, strict=True)


# ----------------------------------------------------------------------------- lab


def _edit_w1(lab: Any, **fields: Any) -> None:
    import tomllib

    from hydradeploy.lab.inventory_out import dumps

    data = tomllib.loads(lab.inventory_path.read_text())
    data["hosts"]["w1"].update(fields)
    lab.inventory_path.write_text(dumps(data))


def _activate_by_hand(lab: Any) -> None:
    path = lab.closure("w1")
    lab.copy_closure("w1", path)
    proc = lab.run("w1", [f"{path}/bin/switch-to-configuration", "switch"], timeout=60)
    assert proc.returncode == 0, proc.stderr


def _w1(lab: Any) -> dict[str, Any]:
    proc = lab.run("srv", ["k3s", "kubectl", "get", "node", "w1", "-o", "json"])
    assert proc.returncode == 0, proc.stderr
    node: dict[str, Any] = json.loads(proc.stdout)
    return node


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.2)


@pytest.mark.lab
def test_hand_activation_adds_labels_but_not_taints_and_never_removes_labels(
    lab_factory: Any,
) -> None:
    from hydradeploy.lab import HostSpec

    lab = lab_factory([HostSpec("srv", "server"), HostSpec("w1", "agent")])
    _edit_w1(
        lab, labels={"hydra.io/new": "yes"}, taints=["hydra.io/new=yes:NoSchedule"]
    )
    _activate_by_hand(lab)
    _wait(lambda: _w1(lab)["metadata"]["labels"].get("hydra.io/new") == "yes", 15,
          "the new label on w1")  # fmt: skip
    taints = {t["key"] for t in _w1(lab)["spec"].get("taints", [])}
    assert "hydra.io/new" not in taints  # --node-taint only counts at registration
    _edit_w1(lab, labels={}, taints=[])
    _activate_by_hand(lab)
    _wait(lambda: lab.node_ready("w1") is True, 15, "w1 Ready")
    time.sleep(2)  # several kubelet rounds after the restart
    assert _w1(lab)["metadata"]["labels"].get("hydra.io/new") == "yes"  # never removed


@pytest.mark.lab
def test_kubectl_answers_for_the_lease(lab_factory: Any) -> None:
    from hydradeploy.lab import HostSpec

    lab = lab_factory([HostSpec("srv", "server"), HostSpec("w1", "agent")])
    proc = lab.run("srv", ["k3s", "kubectl", "get", "lease", "-n", "kube-node-lease", "w1",
                           "-o", "json"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lease = json.loads(proc.stdout)
    assert lease["kind"] == "Lease" and lease["spec"]["holderIdentity"] == "w1"
    kubernetes_validate.validate(lease, KUBERNETES_VERSION, strict=True)
    first = lease["spec"]["renewTime"]
    time.sleep(2.5)  # the lab renews every heartbeat_seconds (1 s)
    again = json.loads(lab.run("srv", ["k3s", "kubectl", "get", "lease", "-n",
                                       "kube-node-lease", "w1", "-o", "json"]).stdout)  # fmt: skip
    assert again["spec"]["renewTime"] > first
    missing = lab.run(
        "srv", ["k3s", "kubectl", "get", "lease", "-n", "kube-node-lease", "x"]
    )
    assert missing.returncode == 1 and "not found" in missing.stderr
    node = json.loads(
        lab.run("srv", ["k3s", "kubectl", "get", "node", "w1", "-o", "json"]).stdout
    )
    kubernetes_validate.validate(node, KUBERNETES_VERSION, strict=True)


def _ready_beat_and_renewal(lab: Any) -> tuple[str, str]:
    node = _w1(lab)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    lease = json.loads(lab.run("srv", ["k3s", "kubectl", "get", "lease", "-n",
                                       "kube-node-lease", "w1", "-o", "json"]).stdout)  # fmt: skip
    return str(ready["lastHeartbeatTime"]), str(lease["spec"]["renewTime"])


@pytest.mark.lab
@pytest.mark.parametrize("report", [300.0, 2.0])
def test_status_is_reposted_only_every_report_period_the_lease_always(
    lab_factory: Any, report: float
) -> None:
    from hydradeploy.lab import HostSpec

    lab = lab_factory([HostSpec("srv", "server"), HostSpec("w1", "agent")],
                      status_report_seconds=report)  # fmt: skip
    beat, renewed = _ready_beat_and_renewal(lab)
    time.sleep(4.5)
    beat2, renewed2 = _ready_beat_and_renewal(lab)
    assert renewed2 > renewed  # the Lease, every heartbeat_seconds
    if report > 10:
        assert beat2 == beat  # nothing changed: no status post within 5 minutes
    else:
        assert beat2 > beat  # the report period passed: posted though unchanged
