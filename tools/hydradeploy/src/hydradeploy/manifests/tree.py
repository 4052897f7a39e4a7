"""A set of manifest documents in the context of the inventory's cluster."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hydradeploy.inventory import Inventory
from hydradeploy.manifests.chart_defaults import ChartDefaults
from hydradeploy.manifests.cluster import Node, cluster_nodes
from hydradeploy.manifests.discovered import discover, may_carry
from hydradeploy.manifests.helm_values import chart_values as coalesced_values
from hydradeploy.manifests.load import Doc
from hydradeploy.manifests.pods import PodTemplate, chart_values, dig, pod_templates
from hydradeploy.manifests.selectors import expr_matches, tolerates


def chart_name(d: Doc) -> str:
    """A HelmChart's chart name: `spec.chart`, or the last part of an oci:// reference
    (the name an OCI chart is published under, e.g. registry.k8s.io/kueue/charts/kueue)."""
    chart = str(d.spec.get("chart", ""))
    return chart.rsplit("/", 1)[-1] if chart.startswith("oci://") else chart


@dataclass
class Tree:
    """The documents never change once the tree is built: the checks' lookups (documents
    by kind, a HelmChart's parsed values, a pod's candidate nodes) are computed once.
    At 1,000 converted containers, scanning every document per pod was most of the cost."""

    docs: list[Doc]
    inventory: Inventory
    kubernetes_version: str
    # (chart, version) -> the chart's default values (hydradeploy.manifests.chart_defaults);
    # without them the checks see only the values we set, not what Helm renders.
    chart_defaults: Mapping[tuple[str, str], ChartDefaults] = field(default_factory=dict)
    nodes: list[Node] = field(init=False)
    pods: list[PodTemplate] = field(init=False)
    _by_kind: dict[str, list[Doc]] = field(init=False, repr=False)
    _values: dict[int, tuple[Doc, dict[str, Any]]] = field(init=False, repr=False)
    _candidates: dict[str, list[Node]] = field(init=False, repr=False)
    _label_keys: set[str] = field(init=False, repr=False)
    _names: dict[tuple[str, str | None], frozenset[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_kind = {}
        for d in self.docs:
            self._by_kind.setdefault(d.kind, []).append(d)
        # keyed by id(): a Doc holds a dict (unhashable); each entry keeps its Doc
        # alive, so an id is never reused while cached
        self._values = {}
        # keyed by the repr of what scheduling reads (candidate_nodes)
        self._candidates = {}
        self._names = {}
        static = cluster_nodes(self.inventory)
        found = discover(static, self.of_kind("HelmChart"), self.values)
        self.nodes = [
            replace(
                n,
                labels={**n.labels, **found.exact.get(n.name, {})},
                discovered_prefixes=found.prefixes.get(n.name, ()),
            )
            for n in static
        ]
        self._label_keys = {k for n in self.nodes for k in n.labels}
        self.pods = pod_templates(self.docs, self.values)

    def defaults_of(self, d: Doc) -> ChartDefaults | None:
        """The upstream defaults of a HelmChart's chart at its pinned version, if known."""
        return self.chart_defaults.get((chart_name(d), str(d.spec.get("version", ""))))

    def values(self, d: Doc) -> dict[str, Any]:
        """A HelmChart's values as its templates see them: ours coalesced with the chart's
        defaults (helm_values), or only ours when the defaults are not known."""
        if id(d) not in self._values:
            chart = self.defaults_of(d)
            values = coalesced_values(chart_values(d), chart) if chart else chart_values(d)
            self._values[id(d)] = (d, values)
        return self._values[id(d)][1]

    def of_kind(self, kind: str, group: str | None = None) -> list[Doc]:
        docs = self._by_kind.get(kind, [])
        return [d for d in docs if group is None or d.group == group]

    def names(self, kind: str, namespace: str | None = None) -> frozenset[str]:
        """Names of the objects of `kind` (in `namespace`); computed once per question
        (the references check asks per volume of every pod)."""
        key = (kind, namespace)
        if key not in self._names:
            self._names[key] = frozenset(
                d.name for d in self.of_kind(kind) if namespace is None or d.namespace == namespace
            )
        return self._names[key]

    def known_label_keys(self) -> set[str]:
        return set(self._label_keys)

    def label_may_exist(self, key: str) -> bool:
        """Some node carries the label, or discovery may put it on one."""
        return key in self._label_keys or any(
            may_carry(n.discovered_prefixes, key) for n in self.nodes
        )

    def runtime_class_selector(self, name: str) -> dict[str, str]:
        for d in self.of_kind("RuntimeClass"):
            if d.name == name:
                return dict((d.obj.get("scheduling") or {}).get("nodeSelector") or {})
        return {}

    def pod_candidates(self, pod: PodTemplate) -> list[Node]:
        """candidate_nodes of one of the tree's pods."""
        return self.candidate_nodes(pod.spec)

    def candidate_nodes(self, pod: Mapping[str, Any]) -> list[Node]:
        """Inventory nodes the scheduler could put this pod on; computed once per distinct
        scheduling (several checks ask for every pod, and generated pods mostly share
        one: the same nodeSelector, no affinity)."""
        key = repr(
            [
                pod.get(k)
                for k in ("nodeSelector", "runtimeClassName", "affinity", "tolerations", "nodeName")
            ]
        )
        if key not in self._candidates:
            self._candidates[key] = self._candidate_nodes(pod)
        return list(self._candidates[key])

    def _candidate_nodes(self, pod: Mapping[str, Any]) -> list[Node]:
        """Inventory nodes the scheduler could put this pod on (labels, required node
        affinity, RuntimeClass scheduling, taints). Labels discovery may add but whose
        values are not modelled (Node.discovered_prefixes) are taken as satisfiable."""
        # a null value is a key Helm's coalescing deletes (helm_values)
        selector = {k: v for k, v in (pod.get("nodeSelector") or {}).items() if v is not None}
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

            def unknown(key: str, node: Node = node) -> bool:
                return key not in node.labels and may_carry(node.discovered_prefixes, key)

            if any(not unknown(k) and node.labels.get(k) != str(v) for k, v in selector.items()):
                continue
            if terms and not any(
                all(
                    unknown(str(e.get("key", ""))) or expr_matches(e, node.labels)
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
