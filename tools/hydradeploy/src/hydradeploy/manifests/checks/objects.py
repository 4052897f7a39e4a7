"""Object identity: one object per name, in a declared namespace."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.cluster import BUILTIN_NAMESPACES
from hydradeploy.manifests.load import Doc
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree


@check("unique")
def check_unique(t: Tree) -> list[Problem]:
    seen: dict[tuple[str, str, str, str], Doc] = {}
    out = []
    for d in t.docs:
        key = (d.group, d.kind, d.namespace, d.name)
        if key in seen:
            out.append(
                Problem(
                    str(d),
                    "unique",
                    f"same object as {seen[key]}: k3s would apply both, the last one wins",
                )
            )
        else:
            seen[key] = d
    return out


@check("namespaces")
def check_namespaces(t: Tree) -> list[Problem]:
    declared = t.names("Namespace") | BUILTIN_NAMESPACES
    out = []
    for d in t.docs:
        if d.namespace and d.namespace not in declared:
            out.append(
                Problem(
                    str(d),
                    "namespaces",
                    f"namespace {d.namespace!r} is not declared under k8s/",
                )
            )
        if d.kind == "HelmChart":
            target = d.spec.get("targetNamespace")
            if target and target not in declared and not d.spec.get("createNamespace"):
                out.append(
                    Problem(
                        str(d),
                        "namespaces",
                        f"targetNamespace {target!r} is not declared and createNamespace is off",
                    )
                )
    return out
