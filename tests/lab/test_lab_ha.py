"""An HA lab (three servers with embedded etcd, seed cps-gpu-cluster's shape): every
server answers kubectl with the same nodes; without the cluster-init server the others
say so the way kubectl does."""

from __future__ import annotations

import json

import pytest
from hydradeploy.lab import HostSpec, Lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(lab_factory) -> Lab:
    return lab_factory(
        [HostSpec("cp1", "server"), HostSpec("cp2", "server"), HostSpec("cp3", "server"),
         HostSpec("gpu1", "agent", gpus={"nvidia": 4},
                  taints=("nvidia.com/gpu=present:NoSchedule",))]
    )  # fmt: skip


def names(lab: Lab, host: str) -> dict[str, dict]:
    proc = lab.run(host, ["k3s", "kubectl", "get", "nodes", "-o", "json"], timeout=20)
    assert proc.returncode == 0, proc.stderr
    return {n["metadata"]["name"]: n for n in json.loads(proc.stdout)["items"]}


def test_every_server_answers_with_the_whole_cluster(lab: Lab) -> None:
    views = {h: names(lab, h) for h in ("cp1", "cp2", "cp3")}
    for view in views.values():
        assert set(view) == {"cp1", "cp2", "cp3", "gpu1"}
    for server in ("cp1", "cp2", "cp3"):
        labels = views["cp1"][server]["metadata"]["labels"]
        assert labels["node-role.kubernetes.io/etcd"] == "true"
    gpu1 = views["cp2"]["gpu1"]
    assert gpu1["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert gpu1["status"]["allocatable"]["nvidia.com/gpu"] == "4"


def test_without_the_cluster_init_server_kubectl_fails_in_one_line(lab: Lab) -> None:
    lab.cut("cp1")
    try:
        proc = lab.run(
            "cp2", ["k3s", "kubectl", "get", "nodes", "-o", "json"], timeout=30
        )
    finally:
        lab.restore("cp1")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error from server (ServiceUnavailable): etcd cluster is unavailable or misconfigured"
    ]
    lab.wait_ready(timeout=20)
