"""Cluster-fit checks of a manifest tree. Importing this package registers them all in
CHECKS (run_all runs them in that order: module by module, alphabetically)."""

from hydradeploy.manifests.checks import (  # noqa: F401 (registers the checks)
    chart_values,
    daemonsets,
    gpus,
    helm_charts,
    inventory_values,
    k3s_components,
    kueue,
    network,
    no_secrets,
    node_labels,
    objects,
    quotas,
    references,
    storage,
    workloads,
)
from hydradeploy.manifests.checks.references import referenced_secrets
from hydradeploy.manifests.checks.registry import CHECKS, Check, check, run_all

__all__ = ["CHECKS", "Check", "check", "referenced_secrets", "run_all"]
