"""Chart values as Helm computes them: the user's values coalesced into the chart's
defaults, then each enabled subchart's section into that subchart's defaults.

helm-controller hands a HelmChart's valuesContent to Helm as a values file (v0.17.1
pkg/controllers/chart/chart.go: the Secret chart-values-<name>, key
HelmChartValuesContent, mounted as values-*.yaml), so Helm's own merge applies:

Helm v3, pkg/chartutil/coalesce.go (helm/helm, read at 018982f1; the same rules in the
later coalesceTablesFullKey with merge=false, which `install`/`upgrade` use):
- coalesceValues: a key of the chart's defaults that the user sets to null is deleted
  ("When the YAML value is null, we remove the value's key"); a key the user does not
  set is copied from the defaults; a user map is merged with a default map;
- CoalesceTables: the same, recursively (dest, the user's, is authoritative); scalars
  and lists are replaced, never merged; a user null for a key the defaults lack stays;
- coalesceDeps: each subchart's section (values key = its alias) is coalesced with the
  subchart's own defaults, after `global` is copied into it (coalesceGlobals).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hydradeploy.manifests.chart_defaults import ChartDefaults


def coalesce(user: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`user` coalesced into `defaults` (both left unchanged)."""
    out: dict[str, Any] = copy.deepcopy(dict(user))
    for key, default in defaults.items():
        if key not in out:
            out[key] = copy.deepcopy(default)
        elif out[key] is None:
            del out[key]  # null deletes the chart's default
        elif isinstance(out[key], dict) and isinstance(default, dict):
            out[key] = coalesce(out[key], default)
        # else: the user's scalar or list replaces the default
    return out


def subchart_enabled(values: Mapping[str, Any], condition: tuple[str, ...]) -> bool:
    """Helm's dependency `condition`: the first of the comma-separated value paths that
    exists decides; when none exists the subchart is enabled (pkg/chartutil/
    dependencies.go processDependencyConditions)."""
    for path in condition:
        node: Any = values
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool):
            return node
    return True


def chart_values(user: Mapping[str, Any], chart: ChartDefaults) -> dict[str, Any]:
    """The values the chart's templates see: `user` coalesced with the chart's defaults
    and, for each enabled subchart, its section with the subchart's."""
    merged = coalesce(user, chart.values)
    for alias, (sub, condition) in chart.subcharts.items():
        if not subchart_enabled(merged, condition):
            continue
        section = merged.get(alias)
        section = dict(section) if isinstance(section, dict) else {}
        glob = merged.get("global")
        if isinstance(glob, dict):
            # coalesceGlobals: the parent's globals win over the section's own
            section["global"] = coalesce(glob, section.get("global") or {})
        merged[alias] = chart_values(section, sub)
    return merged


def unknown_keys(
    user: Mapping[str, Any], defaults: Mapping[str, Any], free_form: frozenset[str], path: str = ""
) -> list[str]:
    """Dotted paths of keys the user sets under a map of the chart's defaults that has
    keys of its own but not this one: a typo, which Helm silently ignores. Maps named in
    `free_form` (nodeSelector, labels, …) take any key, and so does a map whose default
    is empty."""
    out = []
    for key, value in user.items():
        here = f"{path}.{key}" if path else str(key)
        if key not in defaults:
            if defaults and path.rpartition(".")[2] not in free_form:
                out.append(here)
            continue
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict) and key not in free_form:
            out.extend(unknown_keys(value, default, free_form, here))
    return out
