"""Make a node's labels and taints equal to the inventory, through the API.

k3s applies `--node-taint` only when a node registers and merges `--node-label` at
every start without ever removing a label whose flag was dropped (k3s pkg/agent/run.go
@0097157b, `updateMutableLabels`; kubernetes pkg/kubelet/kubelet_node_status.go
@c579a3279: taints only in `initialNode`; the k3s commit that made --node-label
mutable, for k3s issue #1119: its values "are passed through to the kubelet just as
before but after the kubelet comes up they are applied again"). So after
a node rejoined, hydradeploy runs `k3s kubectl label|taint … --overwrite` on a server.

Only keys hydradeploy manages are touched: the inventory's, plus those it set before,
recorded on the node in the annotations hydra.io/managed-labels (label keys) and
hydra.io/managed-taints (KEY:EFFECT), comma-separated. A label or taint set by k3s, the
kubelet, node-feature-discovery or an operator is never removed. On the first sync of a
node (no annotation yet) nothing is removed, except a taint on a key the inventory
taints with another effect (it came from an older --node-taint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hydradeploy.deploy.checks import Facts, NodeSource
from hydradeploy.deploy.models import HostReport, StepResult
from hydradeploy.deploy.remote import Remote, RemoteError
from hydradeploy.errors import UserError
from hydradeploy.inventory import Host, Inventory
from hydradeploy.kube_names import (
    MANAGED_LABELS,
    MANAGED_TAINTS,
    label_key_error,
    label_value_error,
    parse_taint,
)


@dataclass(frozen=True)
class Change:
    node: str
    kind: str  # label | taint
    action: str  # add | change | remove
    key: str  # label key, or taint KEY:EFFECT
    old: str | None = None  # label value / taint KEY[=VALUE]:EFFECT
    new: str | None = None

    def __str__(self) -> str:
        if self.action == "remove":
            return (
                f"{self.node}: remove {self.kind} {self.old if self.kind == 'taint' else self.key}"
            )
        if self.kind == "label":
            was = f" (was {self.old})" if self.old is not None else ""
            return f"{self.node}: {self.action} label {self.key}={self.new}{was}"
        was = f" (was {self.old})" if self.old is not None else ""
        return f"{self.node}: {self.action} taint {self.new}{was}"


@dataclass
class NodePlan:
    """What one node needs: its changes and the kubectl argv lists that make them."""

    node: str
    changes: list[Change] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "changes": [asdict(c) | {"text": str(c)} for c in self.changes],
            "commands": self.commands,
        }


def _taint_text(key: str, value: str | None, effect: str) -> str:
    return f"{key}={value}:{effect}" if value else f"{key}:{effect}"


def _node_taints(node: Mapping[str, Any]) -> dict[str, str]:
    """KEY:EFFECT -> KEY[=VALUE]:EFFECT of the node's taints."""
    out = {}
    for t in node.get("spec", {}).get("taints", []) or []:
        key, effect = str(t.get("key", "")), str(t.get("effect", ""))
        out[f"{key}:{effect}"] = _taint_text(key, t.get("value") or None, effect)
    return out


def _recorded(annotations: Mapping[str, str], name: str) -> set[str] | None:
    if name not in annotations:
        return None
    return {k for k in str(annotations[name]).split(",") if k}


def validate(labels: Mapping[str, str], taints: Sequence[str], where: str) -> None:
    """The values that go into kubectl's argv: refuse anything that is not a valid
    label or taint (the inventory already checked them; this keeps the argv safe)."""
    for key, value in labels.items():
        err = label_key_error(key) or label_value_error(value)
        if err:
            raise UserError(f"{where}: label {key}={value}: {err}")
    for spec in taints:
        try:
            key, value, _effect = parse_taint(spec)
        except ValueError as exc:
            raise UserError(f"{where}: taint {spec!r}: {exc}") from None
        err = label_key_error(key) or label_value_error(value)
        if err:
            raise UserError(f"{where}: taint {spec!r}: {err}")


def plan_node(name: str, node: Mapping[str, Any], labels: Mapping[str, str],
              taints: Sequence[str]) -> NodePlan:  # fmt: skip
    """The changes that make `node` carry exactly the inventory's `labels`/`taints`
    on the keys hydradeploy manages, and the kubectl commands for them."""
    validate(labels, taints, name)
    meta = node.get("metadata", {}) or {}
    have_labels: Mapping[str, str] = meta.get("labels", {}) or {}
    annotations: Mapping[str, str] = meta.get("annotations", {}) or {}
    plan = NodePlan(name)
    # ---- labels
    managed_before = _recorded(annotations, MANAGED_LABELS) or set()
    set_args: list[str] = []
    remove_args: list[str] = []
    for key, value in sorted(labels.items()):
        if have_labels.get(key) != value:
            old = have_labels.get(key)
            plan.changes.append(
                Change(name, "label", "add" if old is None else "change", key, old, value)
            )
            set_args.append(f"{key}={value}")
    for key in sorted(managed_before - set(labels)):
        if key in have_labels:
            plan.changes.append(Change(name, "label", "remove", key, have_labels[key], None))
            remove_args.append(f"{key}-")
    # ---- taints (identity KEY:EFFECT, as kubectl taint and the API treat them)
    have_taints = _node_taints(node)
    want: dict[str, str] = {}
    for spec in taints:
        key, value, effect = parse_taint(spec)
        want[f"{key}:{effect}"] = _taint_text(key, value or None, effect)
    recorded = _recorded(annotations, MANAGED_TAINTS)
    if recorded is None:  # first sync: adopt taints on the keys the inventory taints
        want_keys = {ident.rsplit(":", 1)[0] for ident in want}
        recorded = {i for i in have_taints if i.rsplit(":", 1)[0] in want_keys}
    taint_args: list[str] = []
    for ident in sorted(recorded - set(want)):
        if ident in have_taints:
            plan.changes.append(Change(name, "taint", "remove", ident, have_taints[ident], None))
            taint_args.append(f"{ident}-")
    for ident, text in sorted(want.items()):
        old = have_taints.get(ident)
        if old != text:
            plan.changes.append(
                Change(name, "taint", "add" if old is None else "change", ident, old, text)
            )
            taint_args.append(text)
    # ---- commands: removals and additions, then the record of what is managed
    if set_args or remove_args:
        plan.commands.append(
            ["k3s", "kubectl", "label", "node", name, "--overwrite", *set_args, *remove_args]
        )
    if taint_args:
        plan.commands.append(["k3s", "kubectl", "taint", "node", name, "--overwrite", *taint_args])
    want_labels_ann = ",".join(sorted(labels))
    want_taints_ann = ",".join(sorted(want))
    ann_args = [
        f"{k}={v}"
        for k, v in ((MANAGED_LABELS, want_labels_ann), (MANAGED_TAINTS, want_taints_ann))
        if annotations.get(k) != v
    ]
    if ann_args:
        plan.commands.append(["k3s", "kubectl", "annotate", "node", name, "--overwrite", *ann_args])
    return plan


def plan_nodes(expected: Mapping[str, Mapping[str, Any]], names: Sequence[str],
               nodes: Mapping[str, Any]) -> tuple[list[NodePlan], list[str]]:  # fmt: skip
    """Plans for the registered nodes among `names`; and the names not registered."""
    plans, absent = [], []
    for name in names:
        node = nodes.get(name)
        if node is None:
            absent.append(name)
            continue
        want = expected[name]
        plans.append(plan_node(name, node, want.get("labels", {}), want.get("taints", [])))
    return plans, absent


def apply(kube: Remote, plans: Sequence[NodePlan],
          on_change: Callable[[str], None] = lambda _t: None) -> list[str]:  # fmt: skip
    """Run the plans' commands on a server (argv quoted by Remote.run); returns the
    errors, one line each, naming the node and the command."""
    errors = []
    for plan in plans:
        for change in plan.changes:
            on_change(str(change))
        for argv in plan.commands:
            try:
                res = kube.run(argv, timeout=30, what=f"k3s kubectl {argv[2]} node {plan.node}")
            except RemoteError as exc:
                errors.append(f"{plan.node}: k3s kubectl {argv[2]}: {exc}")
                break
            if not res.ok:
                errors.append(f"{plan.node}: k3s kubectl {argv[2]}: {res.last_line()}")
                break
    return errors


def read_nodes(kube: Remote) -> dict[str, Any]:
    res = kube.run(["k3s", "kubectl", "get", "nodes", "-o", "json"], timeout=20,
                   what="k3s kubectl get nodes")  # fmt: skip
    if not res.ok:
        raise RemoteError(f"{kube.name}: k3s kubectl get nodes: {res.last_line()}")
    try:
        doc = json.loads(res.stdout)
        return {n["metadata"]["name"]: n for n in doc.get("items", [])}
    except (ValueError, KeyError, TypeError) as exc:
        raise RemoteError(
            f"{kube.name}: k3s kubectl get nodes: unreadable answer ({exc})"
        ) from None


def during_deploy(host: Host, inv: Inventory, source: NodeSource, facts: Facts,
                  rep: HostReport, show: Callable[[str], None]) -> None:  # fmt: skip
    """The deploy's sync of `host`'s node and its microVM guests' nodes, run once the
    node rejoined and before the checks: each change shown (`show`) and recorded as the
    step `node-sync` of the host's report (so in the deploy record)."""
    names = [host.name, *(vm.name for vm in host.microvms)]
    t = time.monotonic()
    if facts.nodes is None or source.kube is None:
        rep.steps.append(StepResult("node-sync", False, facts.nodes_error or "no server", 0.0))
        return
    try:
        plans, _absent = plan_nodes(inv.expected_nodes(), names, facts.nodes)
    except UserError as exc:
        rep.steps.append(StepResult("node-sync", False, str(exc), 0.0))
        return
    errors = apply(source.kube, plans, show)
    changes = [str(c) for p in plans for c in p.changes]
    detail = "; ".join(errors or changes) or "labels and taints already as in the inventory"
    rep.steps.append(StepResult("node-sync", not errors, detail, time.monotonic() - t))


def server_nodes(inv: Inventory) -> tuple[Remote | None, dict[str, Any] | None, str]:
    """An open connection to the first server that answers (cluster-init first) and
    its node listing; the caller closes the connection."""
    last = "no server in the inventory"
    for server in sorted(inv.servers, key=lambda h: not h.cluster_init):
        kube = Remote(server)
        try:
            kube.open()
            return kube, read_nodes(kube), ""
        except RemoteError as exc:
            kube.close()
            last = str(exc)
    return None, None, last


def preview(inv: Inventory, hosts: Sequence[Host]) -> dict[str, dict[str, Any]]:
    """For `plan`: per host, the label/taint changes a deploy would make on its node
    and its guests' nodes (as `node_changes` texts), or why they are unknown."""
    kube, nodes, error = server_nodes(inv)
    if kube is not None:
        kube.close()
    out: dict[str, dict[str, Any]] = {}
    for host in hosts:
        if nodes is None:
            out[host.name] = {"node_changes_error": f"no server answered: {error}"}
            continue
        names = [host.name, *(vm.name for vm in host.microvms)]
        try:
            plans, absent = plan_nodes(inv.expected_nodes(), names, nodes)
        except UserError as exc:
            out[host.name] = {"node_changes_error": str(exc)}
            continue
        entry: dict[str, Any] = {"node_changes": [str(c) for p in plans for c in p.changes]}
        if absent:
            entry["node_changes_error"] = (
                f"not registered yet: {', '.join(absent)} (k3s applies the inventory's "
                "labels and taints when it registers)"
            )
        out[host.name] = entry
    return out
