"""Join and health checks: is the host's k3s node really back in the cluster?

The evaluation is pure (facts in, named results out) so it is tested on node JSON
directly; `collect` gathers the facts over SSH and `wait_healthy` polls with backoff
until every check passes or `--check-timeout` runs out.

Checks, each named in every failure:
  system          systemctl is-system-running: running, or degraded by units failed
                  before the deploy (a unit failed since preflight fails it)
  k3s-active      systemctl is-active k3s
  node-exists     seen from a server: the node object exists
  node-ready      its Ready condition is True; after an activation, also its Lease
                  (kube-node-lease/NAME) renewed after the activation ended
  labels          every inventory label is present with the inventory's value
  taints          the inventory taints; no leftover taint on a key hydradeploy manages
  gpus            allocatable nvidia.com/gpu / amd.com/gpu = inventory count
  kubelet-version same k3s version as the cluster-init server
  readyz          servers: `k3s kubectl get --raw /readyz` says ok
  etcd-members    servers with embedded etcd: members = inventory servers, all Ready
  microvm:NAME    a microVM host's guests: node exists, Ready, labels, taints
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hydradeploy.deploy.models import CheckResult
from hydradeploy.deploy.remote import Remote, RemoteError, script
from hydradeploy.inventory import Host, Inventory
from hydradeploy.kube_names import MANAGED_TAINTS, parse_taint

SYSTEM_TAINT_PREFIX = "node.kubernetes.io/"
# Set by the kubelet on a node registered with an external cloud provider (k3s runs it
# so) until the cloud controller initialised it (kubernetes
# pkg/kubelet/kubelet_node_status.go @c579a3279, `initialNode`): never an operator's.
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"
ETCD_LABEL = "node-role.kubernetes.io/etcd"
LEASE_NAMESPACE = "kube-node-lease"
LEASES_MARK = "@@hydradeploy-leases@@"
# Nodes, then the nodes' Leases, in one round trip to the server. The kubelet renews its
# Lease every NodeLeaseDurationSeconds (40) × nodeLeaseRenewIntervalFraction (0.25) =
# 10 s (kubernetes pkg/kubelet/apis/config/v1beta1/defaults.go @1c9cf914,
# pkg/kubelet/kubelet.go) but posts node status only on change or every
# nodeStatusReportFrequency (5 min): the Lease is what proves a kubelet alive now.
_NODES_AND_LEASES = f"""
k3s kubectl get nodes -o json || exit 1
echo '{LEASES_MARK}'
k3s kubectl get leases -n {LEASE_NAMESPACE} -o json 2>/dev/null || true
"""

# is-system-running prints initializing, starting, running, degraded, maintenance,
# stopping, offline or unknown; is-active the unit's active state (systemctl(1), systemd
# 252 as Debian 12 ships it). /readyz answers "ok" unless ?verbose (upstream: kubernetes
# staging/src/k8s.io/apiserver/pkg/server/healthz/healthz.go @046d201c45ce,
# `handleRootHealth`).
_HOST_FACTS = r"""
system=$(systemctl is-system-running 2>/dev/null)
echo "system=$system"
echo "k3s=$(systemctl is-active k3s 2>/dev/null)"
if [ "$1" = server ]; then
  echo "readyz=$(k3s kubectl get --raw /readyz 2>&1 | tail -n 1)"
fi
if [ "$system" = degraded ]; then
  echo "failed=$(systemctl list-units --failed --plain --no-legend 2>/dev/null | awk '{printf "%s ", $1}')"
fi
"""

NODES_MAX_AGE = 0.4  # seconds a node listing is shared between hosts polling at once


class NodeSource:
    """`k3s kubectl get nodes -o json` on one server, shared by every host being checked:
    hosts polling within NODES_MAX_AGE of each other reuse one listing instead of each
    starting kubectl on the server."""

    def __init__(self, kube: Remote | None) -> None:
        self.kube = kube
        self._lock = threading.Lock()
        self._at = -1.0
        self._value: tuple[dict[str, Any] | None, str] = (None, "")
        #: node name -> its Lease's renewTime (epoch seconds) from the last listing;
        #: None when the server gave no Lease list (then node status stands in).
        self.leases: dict[str, float] | None = None

    def get(self) -> tuple[dict[str, Any] | None, str]:
        with self._lock:
            if time.monotonic() - self._at <= NODES_MAX_AGE:
                return self._value
            self._value = self._fetch()
            self._at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        """The next get() asks the server again (after hydradeploy changed a node)."""
        with self._lock:
            self._at = -1.0

    def _fetch(self) -> tuple[dict[str, Any] | None, str]:
        if self.kube is None:
            return None, "no server reachable to ask for the node"
        try:
            res = self.kube.run(
                script(_NODES_AND_LEASES), timeout=20, what="k3s kubectl get nodes and leases"
            )
        except RemoteError as exc:
            return None, str(exc)
        if not res.ok:
            return None, f"{self.kube.name}: k3s kubectl get nodes: {res.last_line()}"
        nodes_text, _, leases_text = res.stdout.partition(LEASES_MARK)
        try:
            nodes = nodes_by_name(json.loads(nodes_text))
        except (ValueError, KeyError, TypeError) as exc:
            return None, f"{self.kube.name}: k3s kubectl get nodes: unreadable answer ({exc})"
        self.leases = lease_renewals(leases_text)
        return nodes, ""


@dataclass
class Facts:
    """What one poll saw: the host's own state and the cluster's node objects."""

    system: str = ""
    k3s: str = ""
    readyz: str | None = None
    failed_units: str = ""
    nodes: dict[str, Any] | None = None  # name -> node object; None: could not ask a server
    leases: dict[str, float] | None = None  # name -> Lease renewTime; None: not known
    nodes_error: str = ""
    host_error: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def parse_host_facts(text: str) -> Facts:
    f = Facts()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        value = value.strip()
        if key == "system":
            f.system = value
        elif key == "k3s":
            f.k3s = value
        elif key == "readyz":
            f.readyz = value
        elif key == "failed":
            f.failed_units = value
    return f


def _epoch(stamp: object) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def lease_renewals(text: str) -> dict[str, float] | None:
    """node name -> spec.renewTime (epoch) from `kubectl get leases -o json`; None when
    the text is no Lease list."""
    try:
        doc = json.loads(text)
        items = doc["items"]
    except (ValueError, KeyError, TypeError):
        return None
    out = {}
    for lease in items:
        name = (lease.get("metadata") or {}).get("name")
        when = _epoch((lease.get("spec") or {}).get("renewTime"))
        if name and when is not None:
            out[str(name)] = when
    return out


def nodes_by_name(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {n["metadata"]["name"]: n for n in doc.get("items", []) if "metadata" in n}


def ready_status(node: Mapping[str, Any]) -> tuple[str, str]:
    for cond in node.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status", "Unknown")), str(cond.get("reason", ""))
    return "Unknown", "no Ready condition"


def heartbeat(node: Mapping[str, Any]) -> float | None:
    """The Ready condition's lastHeartbeatTime as epoch seconds."""
    for cond in node.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Ready" and cond.get("lastHeartbeatTime"):
            try:
                stamp = datetime.fromisoformat(
                    str(cond["lastHeartbeatTime"]).replace("Z", "+00:00")
                )
            except ValueError:
                return None
            return stamp.timestamp()
    return None


def _after(renewed: float | None, since: float) -> bool:
    if renewed is None:
        return False
    return renewed >= since + 1 if since == int(since) else renewed > since


def _stale_lease(name: str, since: float, renewed: float | None) -> str:
    seen = _clock(renewed) + " UTC" if renewed is not None else "never"
    if since == int(since):  # known to the second: see _after
        ended = (
            f"ended in the second {_clock(since)[:8]} UTC; a renewal counts from "
            f"{_clock(since + 1)} UTC"
        )
    else:
        ended = f"ended at {_clock(since)} UTC"
    return (
        f"stale Lease {LEASE_NAMESPACE}/{name}: not renewed since the activation "
        f"{ended} (last renewal {seen})"
    )


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}"


def _taint_strings(node: Mapping[str, Any]) -> set[str]:
    out = set()
    for t in node.get("spec", {}).get("taints", []) or []:
        key = t.get("key", "")
        if key.startswith(SYSTEM_TAINT_PREFIX):
            continue
        value = t.get("value") or ""
        out.add(f"{key}={value}:{t.get('effect', '')}" if value else f"{key}:{t.get('effect', '')}")
    return out


def _taint_check(name: str, node: Mapping[str, Any], inventory: list[str]) -> CheckResult:
    """The inventory's taints are all there, and no taint hydradeploy manages is left
    over. A taint on a key neither the inventory nor an earlier `nodes sync` owns
    (MANAGED_TAINTS) is an operator's (`kubectl taint`, a drain tool): `nodes sync` never
    removes it, so the check must not fail — and roll a deploy back — because of it; it
    is named in the detail of a passing check."""
    have = _taint_strings(node)
    want = {_normal_taint(t) for t in inventory}
    annotations = node.get("metadata", {}).get("annotations", {}) or {}
    managed = {k for k in str(annotations.get(MANAGED_TAINTS, "")).split(",") if k}
    owned_keys = {t.split(":", 1)[0].split("=", 1)[0] for t in want}
    owned_keys |= {m.rsplit(":", 1)[0] for m in managed} | {UNINITIALIZED_TAINT}
    extra = have - want
    unexpected = {t for t in extra if t.split(":", 1)[0].split("=", 1)[0] in owned_keys}
    foreign = extra - unexpected
    detail = []
    if want - have:
        detail.append(f"missing {_fmt(want - have)}")
    if unexpected:
        detail.append(f"unexpected {_fmt(unexpected)}")
    ok = not detail
    if foreign:
        detail.append(f"not managed by hydradeploy, left alone: {_fmt(foreign)}")
    return CheckResult(name, ok, "; ".join(detail))


def _normal_taint(spec: str) -> str:
    key, value, effect = parse_taint(spec)
    return f"{key}={value}:{effect}" if value else f"{key}:{effect}"


def _fmt(items: Mapping[str, str] | set[str]) -> str:
    if isinstance(items, set):
        return ", ".join(sorted(items)) or "none"
    return ", ".join(f"{k}={v}" for k, v in sorted(items.items())) or "none"


def node_checks(
    name: str,
    expected: Mapping[str, Any],
    nodes: Mapping[str, Any],
    *,
    reference_version: str | None,
    prefix: str = "",
    fresh_since: float | None = None,
    leases: Mapping[str, float] | None = None,
) -> list[CheckResult]:
    """node-exists, node-ready, labels, taints, gpus, kubelet-version for one node.

    With `fresh_since` (epoch seconds, the end of the activation), Ready only counts
    once the node's Lease was renewed after that moment: right after an activation the
    old registration still looks Ready until the node-monitor grace period runs out, and
    a kubelet that was not restarted posts status only every 5 minutes, but renews its
    Lease every 10 s. An activation end in whole seconds (the guard's) counts from the
    next second. Without Leases (`leases` None) the Ready heartbeat stands in."""
    p = prefix
    node = nodes.get(name)
    if node is None:
        return [
            CheckResult(f"{p}node-exists", False, f"no node {name!r} registered with the cluster")
        ]
    out = [CheckResult(f"{p}node-exists", True)]
    status, reason = ready_status(node)
    beat = heartbeat(node)
    stale = (
        fresh_since is not None and leases is not None and not _after(leases.get(name), fresh_since)
    )
    if status != "True":
        why = f"node {name} Ready={status}" + (f" ({reason})" if reason else "")
        if stale and fresh_since is not None and leases is not None:
            why += "; " + _stale_lease(name, fresh_since, leases.get(name))
        out.append(CheckResult(f"{p}node-ready", False, why))
    elif stale and fresh_since is not None and leases is not None:
        out.append(
            CheckResult(f"{p}node-ready", False, _stale_lease(name, fresh_since, leases.get(name)))
        )
    elif fresh_since is not None and leases is None and (beat is None or beat <= fresh_since):
        seen = time.strftime("%H:%M:%S", time.gmtime(beat)) if beat is not None else "never"
        out.append(
            CheckResult(
                f"{p}node-ready",
                False,
                f"node {name} has not reported since the activation (last heartbeat {seen} UTC)",
            )
        )
    else:
        out.append(CheckResult(f"{p}node-ready", True))
    labels = node.get("metadata", {}).get("labels", {}) or {}
    want = dict(expected.get("labels", {}))
    missing = {k: v for k, v in want.items() if k not in labels}
    wrong = {k: v for k, v in want.items() if k in labels and labels[k] != v}
    detail = []
    if missing:
        detail.append(f"missing {_fmt(missing)}")
    if wrong:
        detail.append(
            "wrong "
            + ", ".join(f"{k}={labels[k]} (inventory: {v})" for k, v in sorted(wrong.items()))
        )
    out.append(CheckResult(f"{p}labels", not detail, "; ".join(detail)))
    out.append(_taint_check(f"{p}taints", node, expected.get("taints", [])))
    gpus = dict(expected.get("gpus", {}))
    if gpus:
        alloc = node.get("status", {}).get("allocatable", {}) or {}
        bad = []
        for res, count in sorted(gpus.items()):
            have = alloc.get(res)
            if str(have) != str(count):
                bad.append(
                    f"{res} allocatable {have if have is not None else 'absent'}, inventory {count}"
                )
        out.append(CheckResult(f"{p}gpus", not bad, "; ".join(bad)))
    if reference_version is not None:
        version = node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
        out.append(
            CheckResult(
                f"{p}kubelet-version",
                version == reference_version,
                ""
                if version == reference_version
                else f"kubelet {version or 'unknown'}, servers run {reference_version}",
            )
        )
    return out


def evaluate(
    host: Host,
    inv: Inventory,
    facts: Facts,
    fresh_since: float | None = None,
    failed_before: frozenset[str] | None = None,
) -> list[CheckResult]:
    """Every check for `host` on one poll's facts. `failed_before`: the units that had
    failed before the deploy; a unit failed since then fails the system check (the
    activation broke it), while `degraded` by older failures alone passes with them
    listed. Without it (`check`, `status`) degraded passes, its units listed."""
    out: list[CheckResult] = []
    if facts.host_error:
        out.append(CheckResult("system", False, facts.host_error))
    else:
        failed = facts.failed_units.split()
        new = [u for u in failed if u not in failed_before] if failed_before is not None else []
        sys_ok = facts.system in ("running", "degraded") and not new
        detail = f"system is {facts.system or 'unknown'}"
        if new:
            detail += f" (failed since the deploy: {' '.join(new)})"
        elif facts.system == "degraded" and failed:
            detail += f" (failed units: {' '.join(failed)})"
        out.append(CheckResult("system", sys_ok, "" if facts.system == "running" else detail))
        out.append(
            CheckResult(
                "k3s-active",
                facts.k3s == "active",
                "" if facts.k3s == "active" else f"k3s is {facts.k3s or 'unknown'}",
            )
        )
        if host.is_server:
            ok = facts.readyz == "ok"
            out.append(
                CheckResult(
                    "readyz", ok, "" if ok else f"/readyz said {facts.readyz or 'nothing'!r}"
                )
            )
    if facts.nodes is None:
        out.append(CheckResult("node-exists", False, facts.nodes_error or "no server answered"))
        return out
    expected = inv.expected_nodes()
    init = inv.cluster_init.name
    ref_node = facts.nodes.get(init)
    reference = None
    if host.name != init and ref_node is not None:
        reference = ref_node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion")
    out += node_checks(
        host.name,
        expected[host.name],
        facts.nodes,
        reference_version=reference,
        fresh_since=fresh_since,
        leases=facts.leases,
    )
    if host.is_server and inv.embedded_etcd:
        want = len(inv.servers)
        members = [
            n
            for n, node in facts.nodes.items()
            if node.get("metadata", {}).get("labels", {}).get(ETCD_LABEL) == "true"
        ]
        ready = [n for n in members if ready_status(facts.nodes[n])[0] == "True"]
        ok = len(members) == want and len(ready) == want
        out.append(
            CheckResult(
                "etcd-members",
                ok,
                ""
                if ok
                else f"{len(ready)} of {len(members)} etcd members Ready, inventory has {want} servers",
            )
        )
    for vm in host.microvms:
        vm_checks = node_checks(
            vm.name,
            expected[vm.name],
            facts.nodes,
            reference_version=reference,
            prefix=f"microvm:{vm.name}:",
        )
        out += vm_checks
    return out


def _rejoined(results: list[CheckResult]) -> bool:
    ok = {r.name for r in results if r.ok}
    return {"node-exists", "node-ready"} <= ok


def failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.ok]


def collect(host: Host, own: Remote | None, kube: Remote | NodeSource | None) -> Facts:
    """One poll: host facts over `own`, node objects from a server."""
    facts = Facts()
    if own is None:
        facts.host_error = "host not reachable"
    else:
        try:
            res = own.run(
                script(_HOST_FACTS, host.role), timeout=20, what="read system and k3s state"
            )
            facts = parse_host_facts(res.stdout)
        except RemoteError as exc:
            facts.host_error = str(exc)
    source = kube if isinstance(kube, NodeSource) else NodeSource(kube)
    facts.nodes, facts.nodes_error = source.get()
    facts.leases = source.leases
    return facts


def wait_healthy(
    host: Host,
    inv: Inventory,
    own: Remote | None,
    kube: Remote | NodeSource | None,
    *,
    timeout: float,
    cancelled: Callable[[], bool] = lambda: False,
    on_poll: Callable[[list[CheckResult]], None] | None = None,
    fresh_since: float | None = None,
    before_checks: Callable[[Facts], None] | None = None,
    failed_before: frozenset[str] | None = None,
) -> list[CheckResult]:
    """Poll until every check passes or `timeout` runs out; return the last results.

    `fresh_since`: the node's Lease must be renewed after this moment (see node_checks),
    whether or not the activation restarted k3s. `before_checks` runs once, on the
    first poll where the node has rejoined (exists, Ready, fresh), before the other
    checks count (node_sync: labels and taints from the inventory)."""
    start = time.monotonic()
    deadline = start + timeout
    delay = 0.5
    source = kube if isinstance(kube, NodeSource) else NodeSource(kube)
    pending = before_checks
    while True:
        facts = collect(host, own, source)
        results = evaluate(host, inv, facts, fresh_since, failed_before)
        if pending is not None and _rejoined(results):
            pending(facts)
            pending = None
            source.invalidate()
            continue
        if on_poll is not None:
            on_poll(results)
        if not failures(results) or time.monotonic() + delay > deadline or cancelled():
            return results
        time.sleep(delay)
        delay = min(delay * 1.6, 4.0)
