"""Values that must equal the inventory's."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree


@check("inventory-values")
def check_inventory_values(t: Tree) -> list[Problem]:
    """Values that must equal the inventory's: HSA_OVERRIDE_GFX_VERSION is the
    rocm_gfx_version of every node the pod can land on."""
    out = []
    for pod in t.pods:
        for c in pod.containers():
            for e in c.get("env") or []:
                if e.get("name") != "HSA_OVERRIDE_GFX_VERSION":
                    continue
                for n in t.pod_candidates(pod):
                    if n.rocm_gfx_version != e.get("value"):
                        out.append(
                            Problem(
                                str(pod.doc),
                                "inventory-values",
                                f"{pod.owner}: HSA_OVERRIDE_GFX_VERSION={e.get('value')} but {n.name} has rocm_gfx_version {n.rocm_gfx_version!r}",
                            )
                        )
    return out
