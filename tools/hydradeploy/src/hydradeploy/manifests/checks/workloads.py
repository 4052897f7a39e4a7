"""Long-running workloads are complete, and Services reach them."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.pods import dig
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree


@check("workloads")
def check_workloads(t: Tree) -> list[Problem]:
    """Long-running app workloads are complete: probes, cpu/memory requests and a memory
    limit, a priority class, and node selection by label."""
    out = []
    for pod in t.pods:
        if pod.doc.kind not in ("Deployment", "StatefulSet"):
            continue
        if not pod.spec.get("priorityClassName"):
            out.append(Problem(str(pod.doc), "workloads", f"{pod.owner}: no priorityClassName"))
        if not pod.spec.get("nodeSelector") and not dig(pod.spec, ("affinity", "nodeAffinity")):
            out.append(
                Problem(
                    str(pod.doc),
                    "workloads",
                    f"{pod.owner}: no node selection; pick nodes by inventory labels",
                )
            )
        for c in pod.containers():
            name = f"{pod.owner}: container {c.get('name')}"
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    out.append(Problem(str(pod.doc), "workloads", f"{name} has no {probe}"))
            r = c.get("resources") or {}
            missing = [k for k in ("cpu", "memory") if k not in (r.get("requests") or {})]
            if missing:
                out.append(
                    Problem(
                        str(pod.doc),
                        "workloads",
                        f"{name} requests no {' or '.join(missing)}",
                    )
                )
            if "memory" not in (r.get("limits") or {}):
                out.append(Problem(str(pod.doc), "workloads", f"{name} has no memory limit"))
    return out


@check("services")
def check_services(t: Tree) -> list[Problem]:
    """Every Service selects some pod template of its namespace, and its named target
    ports exist on that template."""
    out = []
    for d in t.of_kind("Service"):
        sel = d.spec.get("selector")
        if not sel:
            continue
        matches = [
            p
            for p in t.pods
            if p.namespace == d.namespace and sel.items() <= dict(p.labels).items()
        ]
        if not matches:
            out.append(
                Problem(
                    str(d),
                    "services",
                    f"selector {sel} matches no pod template in {d.namespace}",
                )
            )
            continue
        port_names = {
            p.get("name") for m in matches for c in m.containers() for p in c.get("ports") or []
        }
        for port in d.spec.get("ports") or []:
            target = port.get("targetPort")
            if isinstance(target, str) and target not in port_names:
                out.append(
                    Problem(
                        str(d),
                        "services",
                        f"targetPort {target!r} is not a named container port of the selected pods",
                    )
                )
    return out
