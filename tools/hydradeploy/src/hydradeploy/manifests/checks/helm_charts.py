"""HelmCharts pinned to an exact version from a trusted source."""

from __future__ import annotations

import re

import yaml

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.load import LOADER
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree


@check("helm-charts")
def check_helm_charts(t: Tree) -> list[Problem]:
    """HelmCharts are pinned to an exact version from an https or OCI source, and their
    values parse."""
    out = []
    exact = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
    for d in t.of_kind("HelmChart"):
        chart, version, repo = (
            str(d.spec.get("chart", "")),
            str(d.spec.get("version", "")),
            d.spec.get("repo"),
        )
        if not exact.match(version):
            out.append(
                Problem(
                    str(d),
                    "helm-charts",
                    f"version {version!r} is not an exact chart version",
                )
            )
        if chart.startswith("oci://"):
            if repo:
                out.append(Problem(str(d), "helm-charts", "an oci:// chart takes no repo"))
        elif not (isinstance(repo, str) and repo.startswith("https://")):
            out.append(
                Problem(
                    str(d),
                    "helm-charts",
                    f"repo {repo!r} must be an https:// chart repository",
                )
            )
        try:
            values = yaml.load(d.spec.get("valuesContent") or "{}", Loader=LOADER)
        except yaml.YAMLError as exc:
            out.append(Problem(str(d), "helm-charts", f"valuesContent is not YAML: {exc}"))
            continue
        if not isinstance(values, dict):
            out.append(Problem(str(d), "helm-charts", "valuesContent must be a mapping"))
    return out
