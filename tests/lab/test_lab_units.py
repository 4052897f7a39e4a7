"""Pure parts of the lab, without root: host specs, the lab inventory writer, and the
simulated k3s's node objects and Ready logic."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

import pytest
from hydradeploy.errors import UserError
from hydradeploy.inventory import build, validate
from hydradeploy.lab import inventory_out
from hydradeploy.lab.guest import k3s_sim
from hydradeploy.lab.spec import HostSpec, source_from_specs
from hydradeploy.lab.state import subnet
from hypothesis import given, settings
from hypothesis import strategies as st


def test_host_spec_parsing() -> None:
    assert HostSpec.parse("w1:agent:nvidia=2") == HostSpec(
        "w1", "agent", gpus={"nvidia": 2}
    )
    assert HostSpec.parse("s:server").gpus == {}
    assert HostSpec.parse("m:agent:nvidia=1,amd=1").gpus == {"nvidia": 1, "amd": 1}
    for bad in (
        "w1",
        "w1:agent:nvidia",
        "w1:agent:nvidia=0",
        "a:b:c:d",
        "w1:agent:intel=1",
    ):
        with pytest.raises(UserError):
            HostSpec.parse(bad)


def test_first_server_initialises_the_cluster() -> None:
    source = source_from_specs(
        [HostSpec("a", "agent"), HostSpec("s1", "server"), HostSpec("s2", "server")]
    )
    assert [n for n, h in source["hosts"].items() if h.get("cluster_init")] == ["s1"]
    with pytest.raises(UserError, match="given twice"):
        source_from_specs([HostSpec("s", "server"), HostSpec("s", "agent")])
    with pytest.raises(UserError, match="DNS-1123"):
        source_from_specs([HostSpec("Bad_Name", "server")])


def test_subnets_are_distinct_and_inside_the_benchmark_range() -> None:
    prefixes = {subnet(i)[0] for i in range(512)}
    assert len(prefixes) == 512
    assert all(p.startswith(("198.18.", "198.19.")) for p in prefixes)


label_keys = st.from_regex(r"hydra\.io/[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
label_values = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.dictionaries(label_keys, label_values, max_size=4),
    gpus=st.integers(min_value=0, max_value=8),
    name=st.text(alphabet='abcdef-"\\é', min_size=1, max_size=12),
)
def test_inventory_writer_round_trips_through_toml(
    labels: dict[str, str], gpus: int, name: str
) -> None:
    data = {
        "cluster": {"name": "lab", "disable": ["traefik"], "etcd_snapshot_retention": 3},
        "ssh": {"user": "root", "port": 22, "key": f"/tmp/{name}/id"},
        "hosts": {
            "srv": {"address": "198.18.0.10", "role": "server", "cluster_init": True,
                    "labels": labels, "taints": ["a/b=c:NoSchedule"],
                    "ssh": {"host_key": "ssh-ed25519 AAAA"}},
            "w1": {"address": "198.18.0.11", "role": "agent",
                   "gpus": [{"vendor": "nvidia", "model": "x", "count": gpus or 1}],
                   "microvms": [{"name": "w1-vm1", "address": "198.18.0.100",
                                 "labels": {"hydra.io/node-class": "cpu"}}]},
        },
    }  # fmt: skip
    text = inventory_out.dumps(data)
    parsed = tomllib.loads(text)
    assert parsed == data
    assert validate(parsed) == []
    inv = build(parsed, Path("/lab/inventory.toml"))
    assert inv.host("srv").labels == labels


SETTINGS = {
    "node_name": "w1", "role": "agent", "address": "198.18.0.11",
    "labels": {"hydra.io/gpu-vendor": "nvidia", "hydra.io/gpu-count": "2"},
    "taints": ["hydra.io/gpu=true:NoSchedule"], "gpus": {"nvidia.com/gpu": 2},
    "microvms": [{"name": "w1-vm1", "address": "198.18.0.100", "vcpu": 2, "memory_mb": 2048,
                  "labels": {"hydra.io/microvm-host": "w1"}, "taints": []}],
    "kubelet_version": "v1.35.0+k3s1", "fault": None,
}  # fmt: skip


def test_node_objects_carry_labels_taints_and_gpus() -> None:
    own, vm = k3s_sim.node_objects(SETTINGS)
    assert own["metadata"]["labels"]["hydra.io/gpu-vendor"] == "nvidia"
    assert own["metadata"]["labels"]["kubernetes.io/hostname"] == "w1"
    assert own["spec"]["taints"] == [
        {"key": "hydra.io/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    assert own["status"]["allocatable"]["nvidia.com/gpu"] == "2"
    assert (
        vm["metadata"]["name"] == "w1-vm1"
        and "nvidia.com/gpu" not in vm["status"]["capacity"]
    )
    assert vm["status"]["capacity"]["memory"] == f"{2048 * 1024}Ki"


@pytest.mark.parametrize("fault", ["join", "labels", "gpus"])
def test_node_objects_under_each_k3s_fault(fault: str) -> None:
    nodes = k3s_sim.node_objects({**SETTINGS, "fault": fault})
    if fault == "join":
        assert nodes == []
        return
    own = nodes[0]
    if fault == "labels":
        assert "hydra.io/gpu-vendor" not in own["metadata"]["labels"]
        assert own["metadata"]["labels"]["hydra.io/lab-fault"] == "wrong-labels"
        assert own["status"]["allocatable"]["nvidia.com/gpu"] == "2"
    else:
        assert "nvidia.com/gpu" not in own["status"]["allocatable"]
        assert own["metadata"]["labels"]["hydra.io/gpu-count"] == "2"


def test_registry_turns_silent_nodes_unknown_after_the_grace_period(
    tmp_path: Path,
) -> None:
    registry = k3s_sim.Registry(grace=5, path=tmp_path / "nodes.json")
    registry.heartbeat(k3s_sim.node_objects(SETTINGS))
    ready = registry.render("w1")
    assert ready is not None
    cond = next(c for c in ready["status"]["conditions"] if c["type"] == "Ready")
    assert (cond["status"], cond["reason"]) == ("True", "KubeletReady")
    # Age the last heartbeat past the grace period.
    registry.nodes["w1"]["status_at"] = registry.nodes["w1"]["probe"] = time.time() - 6
    stale = registry.render("w1")
    assert stale is not None
    cond = next(c for c in stale["status"]["conditions"] if c["type"] == "Ready")
    assert (cond["status"], cond["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert ("node.kubernetes.io/unreachable", "NoExecute") in {
        (t["key"], t["effect"]) for t in stale["spec"]["taints"]
    }
    # Persisted: a restarted server keeps its nodes, as etcd would.
    again = k3s_sim.Registry(grace=5, path=tmp_path / "nodes.json")
    assert set(json.loads((tmp_path / "nodes.json").read_text())) == {"w1", "w1-vm1"}
    assert again.render("w1-vm1") is not None
    assert again.render("nope") is None


def test_addons_leave_out_disabled_components() -> None:
    names = {
        a["metadata"]["name"]
        for a in k3s_sim.addons({"disable": ["traefik", "metrics-server"]})["items"]
    }
    assert "traefik" not in names and "metrics-server" not in names
    assert "auth-reader" not in names  # part of metrics-server
    assert {"coredns", "local-storage"} <= names


def test_lab_state_of_another_tool_version_loads(tmp_path: Path) -> None:
    # Labs of other versions share the machine's registry; reap_orphans reads them all.
    from hydradeploy.lab.state import LabState

    (tmp_path / "lab.json").write_text(json.dumps({
        "dir": str(tmp_path), "index": 3, "bridge": "hl3br", "gateway": "198.18.3.1",
        "grace_seconds": 4.0, "heartbeat_seconds": 1.0, "status_report_seconds": 10,
        "hosts": {"a": {"name": "a", "index": 0, "role": "server", "address": "198.18.3.10",
                        "netns": "hydralab3-a", "veth": "hl3h0", "future": True}},
    }))  # fmt: skip
    state = LabState.load(tmp_path)
    assert state is not None and state.index == 3 and state.hosts["a"].role == "server"


def test_a_lab_closure_is_named_as_nixos_names_its_toplevel():
    """nixos-system-NAME-LABEL, the label being the sorted tags then the version
    (nixpkgs top-level.nix and misc/label.nix): so a deploy's package changes show
    the system as one package whose version moved, as on a real NixOS host."""
    from hydradeploy.deploy.nix import closure_changes
    from hydradeploy.lab.closure import nixos_label

    good, bad = (
        nixos_label({"revision": 1, "fault": None}),
        nixos_label({"revision": 2, "fault": "join"}),
    )
    assert (good, bad) == ("26.05.lab1", "join-fault-26.05.lab2")
    h = "0" * 32
    old, new = (
        f"/nix/store/{h}-nixos-system-w1-{good}",
        f"/nix/store/{h}-nixos-system-w1-26.05.lab2",
    )
    assert closure_changes([old], [new]) == ["nixos-system-w1: 26.05.lab1 → 26.05.lab2"]
