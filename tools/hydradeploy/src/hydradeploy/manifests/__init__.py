"""Cluster-fit checks of Kubernetes manifests against the inventory's cluster.

Usable on any directory of manifests (k8s/, k8s/converted/, a test's tmp dir) and any
inventory: `run_all(Tree(load_documents(dir), inventory, KUBERNETES_VERSION))`. Each
check is a function `(Tree) -> list[Problem]`; a Problem names the file, the document and
the object. Schema validation (kubernetes-validate, upstream CRD schemas) is not here: it
needs the test extra and the upstream data (tests/k8s).
"""

from hydradeploy.manifests.checks import CHECKS, Check, check, referenced_secrets, run_all
from hydradeploy.manifests.cluster import Node, cluster_nodes
from hydradeploy.manifests.load import Doc, ManifestError, load_documents, manifest_files
from hydradeploy.manifests.pods import PodTemplate, chart_values, pod_templates
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.quantity import quantity
from hydradeploy.manifests.tree import Tree

__all__ = [
    "CHECKS",
    "Check",
    "Doc",
    "ManifestError",
    "Node",
    "PodTemplate",
    "Problem",
    "Tree",
    "chart_values",
    "check",
    "cluster_nodes",
    "load_documents",
    "manifest_files",
    "pod_templates",
    "quantity",
    "referenced_secrets",
    "run_all",
]
