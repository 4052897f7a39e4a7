"""The simulated API server's Node and Lease objects, with the controllers that touch
them, each following the upstream code named next to it:

* registration (kubelet `tryRegisterWithAPIServer`, kubernetes
  pkg/kubelet/kubelet_node_status.go @c579a3279): a new node is created with the
  kubelet's labels and its `--register-with-taints` (k3s passes `--node-taint` there),
  plus `node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule` because k3s
  runs the kubelet with an external cloud provider (`initialNode`, same file). When the
  node already exists only `updateDefaultLabels` (hostname, os, arch, instance-type,
  zone) and `reconcileExtendedResource` touch it: the taints are never re-applied.
* k3s's own label merge at every agent start (`configureNode` → `updateMutableLabels`,
  k3s pkg/agent/run.go @0097157b): `labels.Merge(nodeLabels, --node-label values)` —
  flag values win, labels whose flag was dropped stay.
* the k3s cloud controller (k3s pkg/cloudprovider/instances.go @17f1aa36:
  `InstanceType` returns "k3s", addresses from the k3s.io/internal-ip and
  k3s.io/hostname annotations, provider ID `k3s://NAME`): it initialises the node a
  moment after registration — instance-type labels, addresses — and removes the
  uninitialized taint.
* status posting (`tryUpdateNodeStatus`, kubelet_node_status.go @c579a3279): the
  kubelet posts only when the status differs from the API's copy or
  nodeStatusReportFrequency passed (5 min by default, kubernetes
  pkg/kubelet/apis/config/v1beta1/defaults.go @1c9cf914). The comparison with the
  API's copy happens here, server side; the outcome is the same.
* the Lease `kube-node-lease/NAME`, renewed every leaseDuration × 0.25 (40 s × 0.25 =
  10 s: NodeLeaseDurationSeconds default in defaults.go @1c9cf914,
  nodeLeaseRenewIntervalFraction = 0.25 in pkg/kubelet/kubelet.go).
* the node lifecycle controller (pkg/controller/nodelifecycle/
  node_lifecycle_controller.go, `tryUpdateNodeHealth`): the probe time moves on when
  the Ready condition's heartbeat changed or the Lease's renewTime moved; once it is
  older than the grace period, Ready and the pressure conditions turn Unknown
  ("NodeStatusUnknown", "Kubelet stopped posting node status.") and the node gets the
  `node.kubernetes.io/unreachable` NoSchedule/NoExecute taints, removed when it reports
  Ready again. Ready=False gets `node.kubernetes.io/not-ready` the same way.
* cordon: `kubectl cordon` only sets `spec.unschedulable` (kubernetes
  staging/src/k8s.io/kubectl/pkg/drain/cordon.go @2556d2c3, `CordonHelper
  .PatchOrReplaceWithContext`); the node lifecycle controller's `doNoScheduleTaintingPass`
  (node_lifecycle_controller.go @003e8629) adds the `node.kubernetes.io/unschedulable`
  NoSchedule taint while `spec.unschedulable` is true and removes it when it is not.

The controllers run lazily, on every read and write under the registry lock — the same
outcome as a periodic monitor with a zero period.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"  # v1.TaintNodeUnschedulable
LEASE_NAMESPACE = "kube-node-lease"
# Labels the kubelet keeps up to date on an existing node (`updateDefaultLabels`).
KUBELET_DEFAULT_LABELS = (
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type",
    "kubernetes.io/os", "kubernetes.io/arch", "node.kubernetes.io/windows-build",
)  # fmt: skip
CLOUD_INIT_SECONDS = 0.5  # the k3s cloud controller initialises a new node this soon after
PRESSURE = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)  # fmt: skip


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def micro_iso(ts: float) -> str:
    """metav1.MicroTime as the API serialises it (RFC 3339, microseconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def _is_extended(resource: str) -> bool:
    # v1helper.IsExtendedResourceName: a domain-prefixed name outside kubernetes.io.
    return "/" in resource and not resource.split("/", 1)[0].endswith("kubernetes.io")


class Registry:
    """The server's nodes and leases, persisted so a k3s restart keeps them (as etcd)."""

    def __init__(self, grace: float, path: Path, lease_duration: float = 40.0) -> None:
        self.grace = grace
        self.lease_duration = lease_duration
        self.path = path
        self.lock = threading.Lock()
        self.nodes: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(path.read_text())
            # Entries of the older lab format (no "lease" key) are dropped: kubelets
            # re-register them.
            self.nodes = {k: v for k, v in loaded.items() if "lease" in v}

    # ------------------------------------------------------------------ kubelet side

    def register(self, node: dict[str, Any], node_labels: dict[str, str]) -> bool:
        """A kubelet registers `node` (its initialNode); k3s then merges its --node-label
        values. Returns True when the node was created, False when it existed."""
        now = time.time()
        name = node["metadata"]["name"]
        with self.lock:
            entry = self.nodes.get(name)
            created = entry is None
            if entry is None:
                obj = copy.deepcopy(node)
                obj["spec"]["taints"] = [
                    *obj["spec"].get("taints", []),
                    {"key": UNINITIALIZED, "value": "true", "effect": "NoSchedule"},
                ]
                entry = {
                    "node": obj, "created": now, "status_at": now, "lease": None,
                    "ready": "True", "ready_since": now, "cloud_init_at": now + CLOUD_INIT_SECONDS,
                }  # fmt: skip
                self.nodes[name] = entry
            else:
                obj = entry["node"]
                labels = obj["metadata"].setdefault("labels", {})
                for key in KUBELET_DEFAULT_LABELS:
                    if key in node["metadata"]["labels"]:
                        labels[key] = node["metadata"]["labels"][key]
                for res in ("capacity", "allocatable"):
                    for k in obj["status"].get(res, {}):
                        if _is_extended(k):
                            obj["status"][res][k] = "0"
                obj["metadata"].setdefault("annotations", {}).update(
                    node["metadata"].get("annotations", {})
                )
            # k3s configureNode → updateMutableLabels: merge, flag values win, never remove.
            obj["metadata"].setdefault("labels", {}).update(node_labels)
            obj["metadata"]["labels"] = dict(sorted(obj["metadata"]["labels"].items()))
            self._controllers(entry, now)
            self._save()
        return created

    def post_status(self, name: str, status: dict[str, Any], report: bool) -> bool | None:
        """The kubelet's status sync: stored when it changed against the API's copy or
        `report` (nodeStatusReportFrequency passed). True: posted, False: unchanged,
        None: no such node (the kubelet cannot patch a deleted node)."""
        now = time.time()
        with self.lock:
            entry = self.nodes.get(name)
            if entry is None:
                return None
            self._controllers(entry, now)
            changed = entry["ready"] != "True" or _status_view(entry["node"]["status"]) != (
                _status_view(status)
            )
            if not (changed or report):
                return False
            entry["node"]["status"] = copy.deepcopy(status)
            entry["status_at"] = now
            entry["probe"] = now
            if entry["ready"] != "True":
                entry["ready"], entry["ready_since"] = "True", now
                taints = entry["node"]["spec"].get("taints", [])
                entry["node"]["spec"]["taints"] = [
                    t for t in taints if t.get("key") not in (UNREACHABLE, NOT_READY)
                ]
            self._save()
            return True

    def renew_lease(self, name: str) -> bool:
        now = time.time()
        with self.lock:
            entry = self.nodes.get(name)
            if entry is None:
                return False
            if entry["lease"] is None:
                entry["lease"] = {"created": now, "renew": now}
            entry["lease"]["renew"] = now
            entry["probe"] = now
            self._controllers(entry, now)
            self._save()
            return True

    def heartbeat(self, nodes: list[dict[str, Any]]) -> None:
        """Register (if needed), post status and renew the Lease of each node at once."""
        for node in nodes:
            name = node["metadata"]["name"]
            with self.lock:
                known = name in self.nodes
            if not known:
                self.register(node, dict(node["metadata"].get("labels", {})))
            self.post_status(name, node["status"], report=True)
            self.renew_lease(name)

    # ------------------------------------------------------------------ API side

    def delete(self, name: str) -> bool:
        with self.lock:
            found = self.nodes.pop(name, None) is not None
            self._save()
            return found

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """A JSON merge patch (RFC 7386) of metadata.labels/annotations and spec.taints,
        as `kubectl label|annotate|taint` send it; None when there is no such node."""
        now = time.time()
        with self.lock:
            entry = self.nodes.get(name)
            if entry is None:
                return None
            self._controllers(entry, now)
            meta = entry["node"]["metadata"]
            for field in ("labels", "annotations"):
                for key, value in (patch.get("metadata", {}).get(field) or {}).items():
                    target = meta.setdefault(field, {})
                    if value is None:
                        target.pop(key, None)
                    else:
                        target[key] = str(value)
                meta[field] = dict(sorted(meta.get(field, {}).items()))
            if "taints" in patch.get("spec", {}):
                entry["node"]["spec"]["taints"] = list(patch["spec"]["taints"] or [])
            if "unschedulable" in patch.get("spec", {}):
                if patch["spec"]["unschedulable"]:
                    entry["node"]["spec"]["unschedulable"] = True
                else:  # false is the default: the API leaves it out
                    entry["node"]["spec"].pop("unschedulable", None)
            self._controllers(entry, now)
            self._save()
        return self.render(name)

    def render(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            entry = self.nodes.get(name)
            if entry is None:
                return None
            if self._controllers(entry, time.time()):
                self._save()
            return _node_view(entry)

    def render_all(self) -> list[dict[str, Any]]:
        now = time.time()
        with self.lock:
            dirty = [self._controllers(self.nodes[n], now) for n in self.nodes]
            if any(dirty):
                self._save()
            return [_node_view(self.nodes[n]) for n in sorted(self.nodes)]

    def lease(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            entry = self.nodes.get(name)
            if entry is None or entry["lease"] is None:
                return None
            return _lease_view(name, entry, self.lease_duration)

    def leases(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                _lease_view(n, self.nodes[n], self.lease_duration)
                for n in sorted(self.nodes)
                if self.nodes[n]["lease"] is not None
            ]

    # ------------------------------------------------------------------ controllers

    def _controllers(self, entry: dict[str, Any], now: float) -> bool:
        """Cloud controller and node lifecycle controller; True when they changed it."""
        changed = False
        node = entry["node"]
        taints = node["spec"].get("taints", [])
        init_at = entry.get("cloud_init_at")
        if init_at is not None and now >= init_at:
            labels = node["metadata"].setdefault("labels", {})
            labels["node.kubernetes.io/instance-type"] = "k3s"
            labels["beta.kubernetes.io/instance-type"] = "k3s"
            node["metadata"]["labels"] = dict(sorted(labels.items()))
            node["spec"]["providerID"] = f"k3s://{node['metadata']['name']}"
            taints = [t for t in taints if t.get("key") != UNINITIALIZED]
            entry["cloud_init_at"] = None
            changed = True
        probe = max(entry.get("probe", entry["status_at"]), entry["status_at"])
        if entry["ready"] == "True" and now > probe + self.grace:
            entry["ready"], entry["ready_since"] = "Unknown", probe + self.grace
            taints = [t for t in taints if t.get("key") not in (UNREACHABLE, NOT_READY)] + [
                {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": iso(now)},
                {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": iso(now)},
            ]
            changed = True
        # doNoScheduleTaintingPass: the unschedulable taint follows spec.unschedulable
        cordoned = bool(node["spec"].get("unschedulable"))
        tainted = any(t.get("key") == UNSCHEDULABLE for t in taints)
        if cordoned and not tainted:
            taints = [
                *taints,
                {"key": UNSCHEDULABLE, "effect": "NoSchedule", "timeAdded": iso(now)},
            ]
            changed = True
        elif tainted and not cordoned:
            taints = [t for t in taints if t.get("key") != UNSCHEDULABLE]
            changed = True
        if changed:
            node["spec"]["taints"] = taints
        if not node["spec"].get("taints"):
            node["spec"].pop("taints", None)
        return changed

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.nodes))
        os.replace(tmp, self.path)


def _status_view(status: dict[str, Any]) -> Any:
    """What nodeStatusHasChanged compares (heartbeat times aside)."""
    return {k: v for k, v in status.items() if k != "conditions"}


def _node_view(entry: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = copy.deepcopy(entry["node"])
    name = node["metadata"]["name"]
    node["metadata"]["creationTimestamp"] = iso(entry["created"])
    node["metadata"]["uid"] = f"lab-{name}-{int(entry['created'])}"
    node["metadata"]["resourceVersion"] = str(int(entry["status_at"] * 1000))
    beat, since = iso(entry["status_at"]), iso(entry["ready_since"])
    ready = entry["ready"] == "True"
    if ready:
        cond = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status"}  # fmt: skip
    else:
        cond = {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status."}  # fmt: skip
    cond |= {"lastHeartbeatTime": beat, "lastTransitionTime": since}
    pressure = [
        {"type": t, "status": "False", "reason": r, "message": m,
         "lastHeartbeatTime": beat, "lastTransitionTime": iso(entry["created"])}
        if ready else
        {"type": t, "status": "Unknown", "reason": "NodeStatusUnknown",
         "message": "Kubelet stopped posting node status.",
         "lastHeartbeatTime": beat, "lastTransitionTime": since}
        for t, r, m in PRESSURE
    ]  # fmt: skip
    node["status"]["conditions"] = [*pressure, cond]
    return node


def _lease_view(name: str, entry: dict[str, Any], duration: float) -> dict[str, Any]:
    lease = entry["lease"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "creationTimestamp": iso(lease["created"]),
            "resourceVersion": str(int(lease["renew"] * 1000)),
            "uid": f"lab-lease-{name}-{int(lease['created'])}",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": name,
                    "uid": f"lab-{name}-{int(entry['created'])}",
                }
            ],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": max(1, round(duration)),
            "renewTime": micro_iso(lease["renew"]),
        },
    }
