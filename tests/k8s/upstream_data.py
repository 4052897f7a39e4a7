"""The upstream reference data beside the repository (../shared/upstream, SOURCES.md there):
CRDs as the supported k3s range serves them, and the default values and values schemas
of the charts we install. Tests skip with a clear reason when the data is absent.

Which helm-controller CRDs a test checks comes from one place,
hydradeploy.versions.HELM_CONTROLLER_VERSIONS (the releases the supported k3s range,
K3S_SUPPORTED, bundles); every one of them must be in the upstream data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hydradeploy.manifests.chart_defaults import ChartDefaults, load_chart_defaults
from hydradeploy.versions import HELM_CONTROLLER_VERSIONS

REPO = Path(__file__).resolve().parents[2]


def _main_clone(repo: Path) -> Path:
    """The clone a git worktree belongs to (its `.git` file points into the clone's
    .git/worktrees/<name>, whose `commondir` names the clone's .git); else `repo`."""
    dotgit = repo / ".git"
    if not dotgit.is_file():
        return repo
    gitdir = Path(dotgit.read_text().partition("gitdir:")[2].strip())
    common = gitdir / "commondir"
    if not common.is_file():
        return repo
    return (gitdir / common.read_text().strip()).resolve().parent


def _locate() -> Path:
    """$HYDRA_UPSTREAM, else ../shared/upstream beside the clone (for a worktree: beside
    the clone it belongs to)."""
    if os.environ.get("HYDRA_UPSTREAM"):
        return Path(os.environ["HYDRA_UPSTREAM"])
    for base in (REPO, _main_clone(REPO)):
        if (base.parent / "shared" / "upstream").is_dir():
            return base.parent / "shared" / "upstream"
    return REPO.parent / "shared" / "upstream"


UPSTREAM = _locate()
MISSING = (
    f"upstream reference data not found at {UPSTREAM} (CI keeps it as ../shared/upstream "
    "beside the clone; or set HYDRA_UPSTREAM; see docs/k8s.md)"
)


def helm_controller_versions() -> tuple[str, ...]:
    """The helm-controller releases whose HelmChart/HelmChartConfig CRDs the supported
    k3s range may serve: stated once, in hydradeploy.versions (K3S_SUPPORTED ->
    HELM_CONTROLLER_VERSIONS, from SOURCES.md "Which helm-controller k3s bundles")."""
    return HELM_CONTROLLER_VERSIONS


@dataclass(frozen=True)
class Crd:
    """One CustomResourceDefinition file: its kind, scope and served versions' schemas."""

    source: str  # e.g. "helm.cattle.io/HelmChart-v0.17.1.yaml"
    group: str
    kind: str
    namespaced: bool
    schemas: Mapping[str, dict[str, Any]]  # served version name -> openAPIV3Schema


def _load_crd(path: Path) -> Crd:
    crd = yaml.safe_load(path.read_text())
    spec = crd["spec"]
    return Crd(
        source=f"{path.parent.name}/{path.name}",
        group=spec["group"],
        kind=spec["names"]["kind"],
        namespaced=spec["scope"] == "Namespaced",
        schemas={
            v["name"]: v["schema"]["openAPIV3Schema"]
            for v in spec["versions"]
            if v.get("served")
        },
    )


@cache
def served_crds(kubernetes_version: str) -> dict[tuple[str, str], list[Crd]]:
    """(group, kind) -> every CRD release the supported k3s range may serve for it.
    helm.cattle.io at each of HELM_CONTROLLER_VERSIONS; Kueue and
    cert-manager at the one chart version we pin (test_pinned_charts_match_upstream_data
    ties the HelmCharts' versions to these files)."""
    crds: dict[tuple[str, str], list[Crd]] = {}
    hc = helm_controller_versions()
    for path in sorted((UPSTREAM / "crds").glob("*/*.yaml")):
        release = path.stem.rpartition("-")[2]
        if path.parent.name == "helm.cattle.io" and release not in hc:
            continue
        crd = _load_crd(path)
        crds.setdefault((crd.group, crd.kind), []).append(crd)
    for group_kind, found in crds.items():
        if group_kind[0] == "helm.cattle.io" and len(found) != len(hc):
            raise FileNotFoundError(
                f"{UPSTREAM}/crds/helm.cattle.io lacks {group_kind[1]} for one of {hc}"
            )
    return crds


# The chart releases whose CRDs we hold, by chart name: the HelmChart that installs them
# must pin the same version (SOURCES.md: Kueue v0.19.2, cert-manager v1.21.1).
CRD_CHART_RELEASES = {"kueue": "0.19.2", "cert-manager": "v1.21.1"}


@cache
def chart_defaults() -> dict[tuple[str, str], ChartDefaults]:
    return load_chart_defaults(UPSTREAM / "charts")


@cache
def values_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(chart, version) -> the chart's values schema, for the charts that ship one."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((UPSTREAM / "charts").glob("*.values.schema.*")):
        chart, _, version = path.name.split(".values.schema.")[0].rpartition("-")
        out[(chart, version)] = yaml.safe_load(path.read_text())  # JSON is YAML
    return out
