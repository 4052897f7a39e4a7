"""A set of manifest documents in the context of the inventory's cluster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hydradeploy.inventory import Inventory
from hydradeploy.manifests.cluster import Node, cluster_nodes
from hydradeploy.manifests.load import Doc
from hydradeploy.manifests.pods import PodTemplate, dig, pod_templates
from hydradeploy.manifests.selectors import discovered, expr_matches, tolerates


@dataclass
class Tree:
    docs: list[Doc]
    inventory: Inventory
    kubernetes_version: str
    nodes: list[Node] = field(init=False)
    pods: list[PodTemplate] = field(init=False)

    def __post_init__(self) -> None:
        self.nodes = cluster_nodes(self.inventory)
        self.pods = pod_templates(self.docs)

    def of_kind(self, kind: str, group: str | None = None) -> list[Doc]:
        return [d for d in self.docs if d.kind == kind and (group is None or d.group == group)]

    def names(self, kind: str, namespace: str | None = None) -> set[str]:
        return {d.name for d in self.of_kind(kind) if namespace is None or d.namespace == namespace}

    def known_label_keys(self) -> set[str]:
        return {k for n in self.nodes for k in n.labels}

    def runtime_class_selector(self, name: str) -> dict[str, str]:
        for d in self.of_kind("RuntimeClass"):
            if d.name == name:
                return dict((d.obj.get("scheduling") or {}).get("nodeSelector") or {})
        return {}

    def candidate_nodes(self, pod: Mapping[str, Any]) -> list[Node]:
        """Inventory nodes the scheduler could put this pod on (labels, required node
        affinity, RuntimeClass scheduling, taints). Requirements on discovered labels
        are unknown until the cluster runs; they are taken as satisfiable."""
        selector = dict(pod.get("nodeSelector") or {})
        if pod.get("runtimeClassName"):
            selector.update(self.runtime_class_selector(str(pod["runtimeClassName"])))
        terms = (
            dig(
                pod,
                (
                    "affinity",
                    "nodeAffinity",
                    "requiredDuringSchedulingIgnoredDuringExecution",
                    "nodeSelectorTerms",
                ),
            )
            or []
        )
        tolerations = list(pod.get("tolerations") or [])
        out = []
        for node in self.nodes:
            if any(not discovered(k) and node.labels.get(k) != str(v) for k, v in selector.items()):
                continue
            if terms and not any(
                all(
                    discovered(e.get("key", "")) or expr_matches(e, node.labels)
                    for e in t.get("matchExpressions") or []
                )
                for t in terms
            ):
                continue
            if node.name != pod.get("nodeName", node.name):
                continue
            if not all(
                tolerates(tolerations, taint)
                for taint in node.taints
                if taint[2] != "PreferNoSchedule"
            ):
                continue
            out.append(node)
        return out
