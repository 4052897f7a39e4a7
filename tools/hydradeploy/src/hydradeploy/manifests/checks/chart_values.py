"""HelmChart values against the chart's upstream defaults: every key we set exists in the
chart (Helm ignores a misspelt key without a word), and every chart we install has
defaults to check against once they are loaded."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.helm_values import chart_values, unknown_keys
from hydradeploy.manifests.pods import chart_values as user_values
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree

# Maps whose keys are data, not chart options: label and annotation maps, node
# selectors, resource lists, and configuration handed verbatim to the program
# (JupyterHub's hub.config traitlets, NFD's worker config).
FREE_FORM = frozenset(
    {
        "nodeSelector", "node_selector", "labels", "annotations", "podAnnotations",
        "podLabels", "resources", "requests", "limits", "config", "extraEnv", "env",
        "extraConfig", "extra_resource_limits", "kubespawner_override", "extra_pod_config",
    }
)  # fmt: skip


@check("chart-values")
def check_chart_values(t: Tree) -> list[Problem]:
    if not t.chart_defaults:
        return []  # no upstream defaults loaded: nothing to compare with
    out = []
    for d in t.of_kind("HelmChart"):
        chart = t.defaults_of(d)
        if chart is None:
            out.append(
                Problem(
                    str(d),
                    "chart-values",
                    f"no upstream default values for chart {d.spec.get('chart')!r} "
                    f"version {d.spec.get('version')!r}: add them to the upstream data",
                )
            )
            continue
        conditions = {c for _, cond in chart.subcharts.values() for c in cond}
        for path in unknown_keys(user_values(d), chart_values({}, chart), FREE_FORM):
            if path in conditions:
                continue  # a subchart's `condition` value (helm_values.subchart_enabled)
            out.append(
                Problem(
                    str(d),
                    "chart-values",
                    f"values {path}: {chart.chart} {chart.version} has no such key "
                    "(Helm would ignore it)",
                )
            )
    return out
