"""The cluster the inventory describes: its nodes with the labels and taints they carry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hydradeploy.inventory import Inventory

BUILTIN_PRIORITY_CLASSES = {"system-node-critical", "system-cluster-critical"}
BUILTIN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
BUILTIN_STORAGE_CLASSES = {"local-path"}  # k3s's local-path-provisioner
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


@dataclass(frozen=True)
class Node:
    name: str
    host: str
    labels: Mapping[str, str]
    taints: tuple[tuple[str, str, str], ...]  # key, value, effect
    gpus: Mapping[str, int]
    rocm_gfx_version: str | None = None
    # label prefixes under which discovery may add labels not modelled one by one
    # (hydradeploy.manifests.discovered)
    discovered_prefixes: tuple[str, ...] = ()


def cluster_nodes(inv: Inventory) -> list[Node]:
    """The inventory's nodes with the labels the kubelet and k3s add on their own:
    - the kubelet's (kubernetes pkg/kubelet/kubelet_node_status.go `initialNode` and
      `updateDefaultLabels`): kubernetes.io/hostname, os, arch and their beta.* twins;
    - k3s's cloud controller (k3s pkg/cloudprovider/instances.go: `InstanceType`
      returns "k3s"): node.kubernetes.io/instance-type and its beta twin;
    - k3s on servers (pkg/server/server.go: ControlPlaneRoleLabelKey and
      MasterRoleLabelKey set to "true"; ETCDRoleLabelKey with embedded etcd).
    The same sources as the lab's k3s simulation (hydradeploy.lab.guest)."""
    nodes = []
    for name, n in inv.expected_nodes().items():
        host = inv.hosts[n["host"]]
        arch = "arm64" if host.system.startswith("aarch64") else "amd64"
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
            "node.kubernetes.io/instance-type": "k3s",
            "beta.kubernetes.io/instance-type": "k3s",
            **n["labels"],
        }
        if n["role"] == "server":
            labels["node-role.kubernetes.io/control-plane"] = "true"
            labels["node-role.kubernetes.io/master"] = "true"
            if inv.embedded_etcd:
                labels["node-role.kubernetes.io/etcd"] = "true"
        taints = []
        for spec in n["taints"]:
            body, _, effect = spec.rpartition(":")
            key, _, value = body.partition("=")
            taints.append((key, value, effect))
        nodes.append(
            Node(
                name=name,
                host=n["host"],
                labels=labels,
                taints=tuple(taints),
                gpus=dict(n["gpus"]),
                rocm_gfx_version=host.rocm_gfx_version if name == host.name else None,
            )
        )
    return nodes
