"""Node selection as the scheduler reads it: label expressions, taints and tolerations,
and the selectors found inside pod specs and chart values."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hydradeploy.manifests.pods import dig


def expr_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op = str(expr.get("key", "")), expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    has = key in labels
    if op == "In":
        return has and labels[key] in values
    if op == "NotIn":
        return not has or labels[key] not in values
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt") and has:
        try:
            a, b = int(labels[key]), int(values[0])
        except (ValueError, IndexError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def tolerates(tolerations: list[Mapping[str, Any]], taint: tuple[str, str, str]) -> bool:
    key, value, effect = taint
    if effect == "PreferNoSchedule":
        return True
    for t in tolerations:
        if t.get("effect") and t["effect"] != effect:
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == key):
            return True
        if t.get("key") == key and t.get("value", "") == value:
            return True
    return False


def selector_label_uses(pod: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, where) for every node label a pod spec selects on."""
    for k in pod.get("nodeSelector") or {}:
        yield k, "nodeSelector"
    na = dig(pod, ("affinity", "nodeAffinity")) or {}
    for t in dig(na, ("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")) or []:
        for e in t.get("matchExpressions") or []:
            yield e.get("key", ""), "required node affinity"
    for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        for e in dig(p, ("preference", "matchExpressions")) or []:
            yield e.get("key", ""), "preferred node affinity"
    for c in pod.get("topologySpreadConstraints") or []:
        yield c.get("topologyKey", ""), "topologySpreadConstraints"


def walk_selectors(values: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any], list[Any]]]:
    """(path, selector, tolerations) for every nodeSelector / node_selector mapping inside
    chart values, with the tolerations beside it (`tolerations`, or JupyterHub's
    `extraTolerations`; none when neither is there)."""
    if isinstance(values, dict):
        for k, v in values.items():
            here = f"{path}.{k}" if path else str(k)
            if k in ("nodeSelector", "node_selector") and isinstance(v, dict):
                beside = values.get("tolerations", values.get("extraTolerations"))
                yield here, v, list(beside) if isinstance(beside, list) else []
            else:
                yield from walk_selectors(v, here)
    elif isinstance(values, list):
        for i, v in enumerate(values):
            yield from walk_selectors(v, f"{path}[{i}]")


def walk_keys(values: Any, keys: set[str], path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every occurrence of one of `keys` inside chart values."""
    if isinstance(values, dict):
        for k, v in values.items():
            here = f"{path}.{k}" if path else str(k)
            if k in keys:
                yield here, k, v
            else:
                yield from walk_keys(v, keys, here)
    elif isinstance(values, list):
        for i, v in enumerate(values):
            yield from walk_keys(v, keys, f"{path}[{i}]")
