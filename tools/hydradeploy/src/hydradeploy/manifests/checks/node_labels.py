"""Node selection that some inventory node satisfies."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.selectors import selector_label_uses, walk_selectors
from hydradeploy.manifests.tree import Tree


@check("node-labels")
def check_node_labels(t: Tree) -> list[Problem]:
    """Every label a pod, chart value or Kueue flavor selects on is carried by some
    inventory node (or is a discovered label), and the selection matches some node."""
    out = []

    def unknown(key: str) -> bool:
        return not t.label_may_exist(key)

    for pod in t.pods:
        for key, where in selector_label_uses(pod.spec):
            if unknown(key):
                out.append(
                    Problem(
                        str(pod.doc),
                        "node-labels",
                        f"{pod.owner}: {where} uses label {key!r}, which no inventory node carries",
                    )
                )
        if not t.pod_candidates(pod):
            out.append(
                Problem(
                    str(pod.doc),
                    "node-labels",
                    f"{pod.owner}: no inventory node matches its node selection",
                )
            )
    for d in t.of_kind("HelmChart"):
        for path, sel, tolerations in walk_selectors(t.values(d)):
            for key in sel:
                if unknown(key):
                    out.append(
                        Problem(
                            str(d),
                            "node-labels",
                            f"values {path} uses label {key!r}, which no inventory node carries",
                        )
                    )
            if not t.candidate_nodes({"nodeSelector": sel, "tolerations": tolerations}):
                out.append(
                    Problem(
                        str(d),
                        "node-labels",
                        f"values {path} matches no inventory node (taints included)",
                    )
                )
    for d in t.of_kind("ResourceFlavor"):
        sel = d.spec.get("nodeLabels") or {}
        for key in sel:
            if unknown(key):
                out.append(
                    Problem(
                        str(d),
                        "node-labels",
                        f"nodeLabels uses {key!r}, which no inventory node carries",
                    )
                )
        if not t.candidate_nodes({"nodeSelector": sel, "tolerations": [{"operator": "Exists"}]}):
            out.append(Problem(str(d), "node-labels", "nodeLabels match no inventory node"))
    for d in t.of_kind("RuntimeClass"):
        for key in (d.obj.get("scheduling") or {}).get("nodeSelector") or {}:
            if unknown(key):
                out.append(
                    Problem(
                        str(d),
                        "node-labels",
                        f"scheduling.nodeSelector uses {key!r}, which no inventory node carries",
                    )
                )
    return out
