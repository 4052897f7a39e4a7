"""ResourceQuotas that Kubernetes accepts and that fit their namespace's workloads."""

from __future__ import annotations

import re

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.pods import PodTemplate
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.quantity import quantity
from hydradeploy.manifests.tree import Tree

EXTENDED = re.compile(r"^(requests\.|limits\.)?([a-z0-9.-]+\.[a-z]+/[A-Za-z0-9._-]+)$")


@check("quotas")
def check_quotas(t: Tree) -> list[Problem]:
    """Extended resources are quota'd only as requests.<resource>."""
    out = []
    for d in t.of_kind("ResourceQuota"):
        for key in d.spec.get("hard") or {}:
            m = EXTENDED.match(key)
            if (
                m
                and "/" in key
                and not key.startswith("requests.")
                and not key.startswith(("count/",))
                # per-class storage items: <class>.storageclass.storage.k8s.io/requests.storage
                and ".storageclass.storage.k8s.io/" not in key
            ):
                out.append(
                    Problem(
                        str(d),
                        "quotas",
                        f"{key!r}: extended resources take only 'requests.{m.group(2)}'",
                    )
                )
    return out


def _peak_pods(t: Tree, pod: PodTemplate) -> int:
    """Most pods of this template alive at once: replicas (or the HPA's maximum), plus
    the rolling update's surge."""
    spec = pod.doc.spec
    if pod.doc.kind not in ("Deployment", "StatefulSet"):
        return int(spec.get("parallelism", 1)) if pod.doc.kind == "Job" else 1
    replicas = int(spec.get("replicas", 1))
    for h in t.of_kind("HorizontalPodAutoscaler"):
        ref = h.spec.get("scaleTargetRef") or {}
        if h.namespace == pod.namespace and ref.get("name") == pod.doc.name:
            replicas = int(h.spec.get("maxReplicas", replicas))
    strategy = spec.get("strategy") or {}
    if pod.doc.kind == "Deployment" and strategy.get("type", "RollingUpdate") == "RollingUpdate":
        surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
        replicas += -(-replicas * int(surge[:-1]) // 100) if isinstance(surge, str) else int(surge)
    return replicas


@check("quota-fit")
def check_quota_fit(t: Tree) -> list[Problem]:
    """The namespace's own workloads, at their peak (HPA maximum, rolling-update surge),
    fit its ResourceQuota: a quota that blocks its apps fails only at 3 a.m."""
    out = []
    for q in t.of_kind("ResourceQuota"):
        hard = q.spec.get("hard") or {}
        used: dict[str, float] = {}
        for pod in t.pods:
            if pod.namespace != q.namespace or pod.doc.kind == "HelmChart":
                continue
            n = _peak_pods(t, pod)
            for c in pod.containers():
                r = c.get("resources") or {}
                for section, prefix in (
                    ("requests", "requests."),
                    ("limits", "limits."),
                ):
                    for res, v in (r.get(section) or {}).items():
                        key = prefix + res
                        used[key] = used.get(key, 0.0) + n * quantity(v)
                # extended resources: a limit alone is also the request
                for res, v in (r.get("limits") or {}).items():
                    if "/" in res and res not in (r.get("requests") or {}):
                        key = "requests." + res
                        used[key] = used.get(key, 0.0) + n * quantity(v)
        for key, limit in hard.items():
            if key in used and used[key] > quantity(limit) + 1e-9:
                out.append(
                    Problem(
                        str(q),
                        "quota-fit",
                        f"{key}: the namespace's workloads need {used[key]:g} at their peak, "
                        f"the quota allows {quantity(limit):g}",
                    )
                )
    return out
