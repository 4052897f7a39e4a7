"""DaemonSets that charts render reach every node their selector picks: a node whose taint
the values do not tolerate silently gets no pod (no device plugin, no metrics)."""

from __future__ import annotations

from typing import Any

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree, chart_name

# chart -> (values path of a DaemonSet's pod settings, its node-selector key, the value
# that must be true for that selector to apply, or None). Read from the charts:
# - dcgm-exporter 4.8.2: templates/daemonset.yaml renders .Values.nodeSelector,
#   .tolerations, .affinity (NVIDIA/dcgm-exporter deployment/templates, read at 00673efa);
# - nvidia-device-plugin 0.20.0: the plugin DaemonSet (templates/daemonset-device-plugin.yml)
#   from the top-level nodeSelector/tolerations/affinity, and the bundled NFD's worker
#   ("the nfd-worker DaemonSet", node-feature-discovery 0.19.0 values.yaml) from nfd.worker;
# - amd-gpu 0.21.0: the device plugin and labeller DaemonSets ("Set daemonsets
#   updateStrategy", values.yaml) use node_selector only when node_selector_enabled.
DAEMONSET_VALUES: dict[str, list[tuple[str, str, str | None]]] = {
    "dcgm-exporter": [("", "nodeSelector", None)],
    "nvidia-device-plugin": [("", "nodeSelector", None), ("nfd.worker", "nodeSelector", None)],
    "amd-gpu": [("", "node_selector", "node_selector_enabled")],
}


def _at(values: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        values = values.get(part) if isinstance(values, dict) else None
    return values


@check("daemonsets")
def check_daemonsets(t: Tree) -> list[Problem]:
    out = []
    for d in t.of_kind("HelmChart"):
        values = t.values(d)
        for path, selector_key, enabled in DAEMONSET_VALUES.get(chart_name(d), []):
            pod = _at(values, path)
            if not isinstance(pod, dict):
                continue
            if "tolerations" not in pod and t.defaults_of(d) is None:
                continue  # the chart's default tolerations apply, and we do not know them
            use_selector = enabled is None or values.get(enabled) is True
            spec = {
                "nodeSelector": (pod.get(selector_key) or {}) if use_selector else {},
                "affinity": pod.get("affinity") or {},
            }
            wanted = t.candidate_nodes({**spec, "tolerations": [{"operator": "Exists"}]})
            placed = {
                n.name
                for n in t.candidate_nodes({**spec, "tolerations": pod.get("tolerations") or []})
            }
            for n in wanted:
                if n.name in placed:
                    continue
                taints = ", ".join(f"{k}={v}:{e}" if v else f"{k}:{e}" for k, v, e in n.taints)
                where = f"values {path}" if path else "values"
                out.append(
                    Problem(
                        str(d),
                        "daemonsets",
                        f"{where}: the DaemonSet skips node {n.name}, whose taints ({taints}) "
                        "its tolerations do not cover",
                    )
                )
    return out
