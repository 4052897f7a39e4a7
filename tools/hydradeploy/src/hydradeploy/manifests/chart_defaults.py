"""The default values of the charts we install, read from a directory of upstream files
named `<chart>-<version>.values.yaml` (../shared/upstream/charts; SOURCES.md there says
where each comes from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ChartDefaults:
    chart: str
    version: str
    values: dict[str, Any]
    # values key (the dependency's alias) -> (subchart, its `condition` paths)
    subcharts: dict[str, tuple[ChartDefaults, tuple[str, ...]]] = field(default_factory=dict)


# Subcharts bundled in a chart's package, by (chart, version) -> values key -> (subchart
# name, version, condition). nvidia-device-plugin 0.20.0's tgz bundles the
# node-feature-discovery chart 0.19.0 (SOURCES.md); its Chart.yaml declares it with
# `alias: nfd` and `condition: nfd.enabled,gfd.enabled` (NVIDIA/k8s-device-plugin
# deployments/helm/nvidia-device-plugin/Chart.yaml, read at 7683849a).
SUBCHARTS: dict[tuple[str, str], dict[str, tuple[str, str, tuple[str, ...]]]] = {
    ("nvidia-device-plugin", "0.20.0"): {
        "nfd": ("node-feature-discovery", "0.19.0", ("nfd.enabled", "gfd.enabled"))
    },
}


def load_chart_defaults(directory: Path) -> dict[tuple[str, str], ChartDefaults]:
    """(chart, version) -> defaults, with subcharts attached; {} when `directory` is absent."""
    plain: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.values.yaml")):
        chart, _, version = path.name.removesuffix(".values.yaml").rpartition("-")
        loaded = yaml.safe_load(path.read_text())
        plain[(chart, version)] = loaded if isinstance(loaded, dict) else {}
    out = {key: ChartDefaults(key[0], key[1], values) for key, values in plain.items()}
    for key, subs in SUBCHARTS.items():
        if key not in out:
            continue
        for alias, (name, version, condition) in subs.items():
            if (name, version) in out:
                out[key].subcharts[alias] = (out[(name, version)], condition)
    return out
