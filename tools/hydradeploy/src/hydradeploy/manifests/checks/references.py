"""Names that objects refer to resolve inside the tree."""

from __future__ import annotations

from typing import Any

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.cluster import BUILTIN_PRIORITY_CLASSES
from hydradeploy.manifests.pods import dig
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.selectors import walk_keys
from hydradeploy.manifests.tree import Tree


@check("references")
def check_references(t: Tree) -> list[Problem]:
    """PriorityClass, RuntimeClass, PVC and ConfigMap references resolve inside the tree."""
    priorities = t.names("PriorityClass") | BUILTIN_PRIORITY_CLASSES
    runtimes = t.names("RuntimeClass")
    out = []
    for pod in t.pods:
        where = str(pod.doc)
        pc = pod.spec.get("priorityClassName")
        if pc and pc not in priorities:
            out.append(
                Problem(
                    where,
                    "references",
                    f"{pod.owner}: PriorityClass {pc!r} does not exist",
                )
            )
        rc = pod.spec.get("runtimeClassName")
        if rc and rc not in runtimes:
            out.append(
                Problem(
                    where,
                    "references",
                    f"{pod.owner}: RuntimeClass {rc!r} does not exist",
                )
            )
        if pod.doc.kind == "HelmChart":
            continue  # chart-made pods reference chart-made objects
        for v in pod.spec.get("volumes") or []:
            if not isinstance(v, dict):
                continue  # nothing to resolve (dig would find nothing)
            claim = _at(v, "persistentVolumeClaim", "claimName")
            if claim and claim not in t.names("PersistentVolumeClaim", pod.namespace):
                out.append(
                    Problem(
                        where,
                        "references",
                        f"{pod.owner}: volume {v.get('name')} uses PVC {claim!r}, not declared in {pod.namespace}",
                    )
                )
            cm = _at(v, "configMap", "name")
            if (
                cm
                and cm not in t.names("ConfigMap", pod.namespace)
                and not _at(v, "configMap", "optional")
            ):
                out.append(
                    Problem(
                        where,
                        "references",
                        f"{pod.owner}: volume {v.get('name')} uses ConfigMap {cm!r}, not declared in {pod.namespace}",
                    )
                )
    for d in t.of_kind("HelmChart"):
        refs = {"priorityClassName": priorities, "runtimeClassName": runtimes}
        for path, key, value in walk_keys(t.values(d), set(refs)):
            if isinstance(value, str) and value and value not in refs[key]:
                kind = key[0].upper() + key[1 : -len("ClassName")]
                out.append(
                    Problem(
                        str(d),
                        "references",
                        f"values {path}: {kind}Class {value!r} does not exist",
                    )
                )
    for d in t.of_kind("HorizontalPodAutoscaler") + t.of_kind("PodDisruptionBudget"):
        if d.kind == "HorizontalPodAutoscaler":
            ref = d.spec.get("scaleTargetRef") or {}
            if ref.get("name") not in t.names(str(ref.get("kind")), d.namespace):
                out.append(
                    Problem(
                        str(d),
                        "references",
                        f"scaleTargetRef {ref.get('kind')} {ref.get('name')!r} does not exist",
                    )
                )
            target = next(
                (
                    p
                    for p in t.pods
                    if p.doc.kind == ref.get("kind")
                    and p.doc.name == ref.get("name")
                    and p.namespace == d.namespace
                ),
                None,
            )
            if target and "replicas" in target.doc.spec:
                out.append(
                    Problem(
                        str(d),
                        "references",
                        f"{target.owner} sets spec.replicas: k3s re-applies it and undoes the HPA's scaling",
                    )
                )
        else:
            sel = (d.spec.get("selector") or {}).get("matchLabels") or {}
            if not any(
                p.namespace == d.namespace and sel.items() <= p.labels.items() for p in t.pods
            ):
                out.append(
                    Problem(
                        str(d),
                        "references",
                        f"selector {sel} matches no pod template in {d.namespace}",
                    )
                )
    return out


def _at(v: dict[str, Any], key: str, field: str) -> Any:
    """v[key][field], or None (pods.dig for two keys: asked per volume of every pod)."""
    inner = v.get(key)
    return inner.get(field) if isinstance(inner, dict) else None


def referenced_secrets(t: Tree) -> dict[str, set[str]]:
    """Secret name -> the objects that need it (namespace/secret)."""
    out: dict[str, set[str]] = {}
    for pod in t.pods:
        names = set()
        for v in pod.spec.get("volumes") or []:
            if dig(v, ("secret", "secretName")):
                names.add(v["secret"]["secretName"])
        for c in pod.containers():
            for e in c.get("envFrom") or []:
                if dig(e, ("secretRef", "name")):
                    names.add(e["secretRef"]["name"])
            for e in c.get("env") or []:
                ref = dig(e, ("valueFrom", "secretKeyRef", "name"))
                if ref:
                    names.add(ref)
        for n in names:
            out.setdefault(f"{pod.namespace}/{n}", set()).add(pod.owner)
    return out
