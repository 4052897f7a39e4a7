"""Each check catches the mistake it exists for: the real tree, one thing broken."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydradeploy.inventory import load_inventory
from k8s_fixtures import (  # noqa: F401 (fixtures)
    REPO,
    broken_fixture,
    inventory_fixture,
    k8s_docs_fixture,
    tree_fixture,
)
from manifest_checks import CHECKS, Doc, Tree, run_all
from upstream_data import MISSING, UPSTREAM

Docs = list[Doc]


def find(
    docs: Docs, kind: str, name: str, namespace: str | None = None
) -> dict[str, Any]:
    for d in docs:
        if (
            d.kind == kind
            and d.name == name
            and (namespace is None or d.namespace == namespace)
        ):
            return d.obj
    raise LookupError(f"{kind} {name}")


def pod(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    o = find(docs, kind, name)
    return o["spec"]["template"]["spec"]


def container(docs: Docs, kind: str, name: str) -> dict[str, Any]:
    return pod(docs, kind, name)["containers"][0]


def add(docs: Docs, text: str) -> None:
    for obj in yaml.safe_load_all(text):
        docs.append(Doc(Path("k8s/apps/test/added.yaml"), len(docs), obj))


def remove(docs: Docs, kind: str, name: str, namespace: str | None = None) -> Docs:
    return [
        d
        for d in docs
        if not (d.kind == kind and d.name == name and namespace in (None, d.namespace))
    ]


def set_values(docs: Docs, chart: str, edit: Callable[[dict[str, Any]], None]) -> None:
    o = find(docs, "HelmChart", chart)
    values = yaml.safe_load(o["spec"]["valuesContent"])
    edit(values)
    o["spec"]["valuesContent"] = yaml.safe_dump(values)


def open_webui_hpa(max_replicas: int) -> str:
    """A CPU HorizontalPodAutoscaler on Open WebUI (the tree has none: one replica)."""
    return (
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
        "metadata: {name: open-webui, namespace: open-webui}\n"
        "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: open-webui}\n"
        f"  minReplicas: 1\n  maxReplicas: {max_replicas}\n  metrics:\n"
        "    - type: Resource\n      resource:\n        name: cpu\n"
        "        target: {type: Utilization, averageUtilization: 70}\n"
    )


def _tabby_gpus(docs: Docs, n: int) -> None:
    r = container(docs, "Deployment", "tabbyapi")["resources"]
    r["requests"]["nvidia.com/gpu"] = r["limits"]["nvidia.com/gpu"] = n


def _four_gpu_profile(values: dict[str, Any]) -> None:
    values["singleuser"]["profileList"].append(
        {
            "display_name": "4 GPUs",
            "slug": "gpu-4",
            "kubespawner_override": {
                "node_selector": {"hydra.io/gpu-class": "generation"},
                "extra_resource_limits": {"nvidia.com/gpu": "4"},
                "extra_pod_config": {"runtimeClassName": "nvidia"},
            },
        }
    )


RETRY_REFUSED = (
    "spec.failurePolicy: 'retry' is not one of ['abort', 'reinstall'] "
    "(helm.cattle.io/HelmChart-v0.17.1.yaml)"
)

# (check, what is broken, mutation, text the problem must contain)
CASES: list[tuple[str, str, Callable[[Docs], Docs | None], str]] = [
    (
        "schema",
        "unknown container field",
        lambda d: container(d, "Deployment", "comfyui").update(
            imagePullPolicyy="Always"
        ),
        "'imagePullPolicyy' was unexpected",
    ),
    (
        "schema",
        "wrong type",
        lambda d: find(d, "PriorityClass", "batch-low").update(value="low"),
        "value",
    ),
    (
        "schema",
        "kind without schema or upstream CRD",
        lambda d: add(
            d, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
        ),
        "no upstream CRD",
    ),
    (
        "schema",
        "unknown HelmChart spec key",
        lambda d: find(d, "HelmChart", "kueue")["spec"].update(values_content="x: 1"),
        "'values_content' was unexpected",
    ),
    (
        "schema",
        "ClusterQueue queueingStrategy outside the enum",
        lambda d: find(d, "ClusterQueue", "nvidia-batch")["spec"].update(
            queueingStrategy="FIFO"
        ),
        "'FIFO' is not one of ['StrictFIFO', 'BestEffortFIFO']",
    ),
    (
        "schema",
        "failurePolicy retry, which helm-controller v0.17.1 does not know",
        lambda d: find(d, "HelmChart", "kueue")["spec"].update(failurePolicy="retry"),
        RETRY_REFUSED,
    ),
    (
        "schema",
        "a field v0.17.1 would prune (serverSide first appears in v0.17.7)",
        lambda d: find(d, "HelmChart", "kueue")["spec"].update(serverSide="auto"),
        "'serverSide' was unexpected) (helm.cattle.io/HelmChart-v0.17.1.yaml)",
    ),
    (
        "schema",
        "namespace on a cluster-scoped CRD",
        lambda d: find(d, "ResourceFlavor", "gpu-igpu")["metadata"].update(
            namespace="x"
        ),
        "cluster-scoped",
    ),
    (
        "schema",
        "ClusterIssuer with two issuer types",
        lambda d: find(d, "ClusterIssuer", "hydra-ca")["spec"].update(selfSigned={}),
        "may not specify more than one issuer type",
    ),
    (
        "values-schema",
        "a JupyterHub value the chart's schema does not allow",
        lambda d: set_values(
            d, "jupyterhub", lambda v: v["hub"].update(nodeSelektor={})
        ),
        (
            "values hub: Additional properties are not allowed ('nodeSelektor' was unexpected) "
            "(jupyterhub 4.4.0 values schema)"
        ),
    ),
    (
        "values-schema",
        "a subchart value of the wrong type (NFD inside the NVIDIA chart)",
        lambda d: set_values(
            d,
            "nvidia-device-plugin",
            lambda v: v["nfd"]["worker"].update(tolerations="all"),
        ),
        (
            "values nfd.worker.tolerations: 'all' is not of type 'array' "
            "(node-feature-discovery 0.19.0 values schema)"
        ),
    ),
    (
        "chart-values",
        "a misspelt key in a chart without a values schema",
        lambda d: set_values(d, "dcgm-exporter", lambda v: v.update(serviceMonitr={})),
        "values serviceMonitr: dcgm-exporter 4.8.2 has no such key",
    ),
    (
        "chart-values",
        "a chart version without upstream defaults",
        lambda d: find(d, "HelmChart", "dcgm-exporter")["spec"].update(version="4.8.3"),
        "no upstream default values for chart 'dcgm-exporter' version '4.8.3'",
    ),
    (
        "node-labels",
        "a chart default label nobody sets (the AMD chart's pci-0300_1002)",
        lambda d: set_values(
            d,
            "amd-gpu",
            lambda v: v["node_selector"].pop(
                "feature.node.kubernetes.io/pci-0300_1002.present"
            ),
        ),
        "values node_selector uses label 'feature.node.kubernetes.io/pci-0300_1002.present'",
    ),
    (
        "unique",
        "same object twice",
        lambda d: add(d, yaml.safe_dump(find(d, "Service", "ollama"))),
        "same object as",
    ),
    (
        "namespaces",
        "undeclared namespace",
        lambda d: find(d, "Service", "ollama")["metadata"].update(namespace="ai-typo"),
        "'ai-typo' is not declared",
    ),
    (
        "node-labels",
        "label no node carries",
        lambda d: pod(d, "Deployment", "comfyui")["nodeSelector"].update(
            {"hydra.io/has-h100": "true"}
        ),
        "'hydra.io/has-h100'",
    ),
    (
        "node-labels",
        "labels of two different nodes",
        lambda d: pod(d, "Deployment", "tabbyapi")["nodeSelector"].update(
            {"hydra.io/has-5070ti": "true"}
        ),
        "no inventory node matches",
    ),
    (
        "node-labels",
        "affinity on a label no node carries",
        lambda d: pod(d, "Job", "lora-emilie").update(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "gpu-type",
                                        "operator": "In",
                                        "values": ["5070ti"],
                                    }
                                ]
                            }
                        ]
                    }
                }
            }
        ),
        "'gpu-type'",
    ),
    (
        "node-labels",
        "chart values select a label no node carries",
        lambda d: set_values(
            d, "amd-gpu", lambda v: v["node_selector"].update({"gpu": "amd"})
        ),
        "values node_selector uses label 'gpu'",
    ),
    (
        "node-labels",
        "Kueue flavor for a GPU class nobody has",
        lambda d: find(d, "ResourceFlavor", "gpu-igpu")["spec"]["nodeLabels"].update(
            {"hydra.io/gpu-class": "training"}
        ),
        "nodeLabels match no inventory node",
    ),
    (
        "gpu-fit",
        "more GPUs than the node has",
        lambda d: _tabby_gpus(d, 3),
        "asks for {'nvidia.com/gpu': 3}",
    ),
    (
        "gpu-fit",
        "NVIDIA GPU without the nvidia runtime",
        lambda d: pod(d, "Deployment", "ollama").pop("runtimeClassName"),
        "without runtimeClassName: nvidia",
    ),
    (
        "gpu-fit",
        "labels that also admit a node without GPUs",
        lambda d: (
            pod(d, "Deployment", "ollama").update(
                runtimeClassName="nvidia", nodeSelector={"kubernetes.io/os": "linux"}
            )
            or remove(d, "RuntimeClass", "nvidia")
        ),
        "hydra-amd-vm1: no GPUs",
    ),
    (
        "gpu-fit",
        "GPU taken through the environment, not the device plugin",
        lambda d: (
            container(d, "Deployment", "open-webui")
            .setdefault("env", [])
            .append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"})
        ),
        "sets NVIDIA_VISIBLE_DEVICES without requesting a GPU",
    ),
    (
        "gpu-fit",
        "request differs from limit",
        lambda d: container(d, "Deployment", "comfyui")["resources"]["limits"].update(
            {"nvidia.com/gpu": 2}
        ),
        "request 1 != limit 2",
    ),
    (
        "gpu-fit",
        "AMD GPU on an NVIDIA node",
        lambda d: pod(d, "Deployment", "ollama-amd")["nodeSelector"].update(
            {"hydra.io/gpu-vendor": "nvidia", "hydra.io/gpu-class": "generation"}
        ),
        "asks for {'amd.com/gpu': 1}",
    ),
    (
        "gpu-fit",
        "a 4-GPU notebook profile (the seed's) on 2-GPU nodes",
        lambda d: set_values(d, "jupyterhub", _four_gpu_profile),
        "JupyterHub profile gpu-4: asks for {'nvidia.com/gpu': 4}",
    ),
    (
        "gpu-strategy",
        "GPU Deployment with a rolling update",
        lambda d: find(d, "Deployment", "comfyui")["spec"].update(
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            }
        ),
        "use strategy.type: Recreate",
    ),
    (
        "gpu-budget",
        "three guaranteed GPU services on a 2-GPU node",
        lambda d: [
            pod(d, "Deployment", n).update(priorityClassName="generation-high")
            for n in ("gpt-sovits", "ollama")
        ],
        "nvidia.com/gpu: 3 wanted",
    ),
    (
        "references",
        "unknown PriorityClass",
        lambda d: pod(d, "Deployment", "tabbyapi").update(priorityClassName="critical"),
        "PriorityClass 'critical' does not exist",
    ),
    (
        "references",
        "unknown RuntimeClass",
        lambda d: remove(d, "RuntimeClass", "nvidia"),
        "RuntimeClass 'nvidia' does not exist",
    ),
    (
        "references",
        "claim of another namespace",
        lambda d: pod(d, "Deployment", "ollama")["volumes"][0][
            "persistentVolumeClaim"
        ].update(claimName="ollama-amd-data"),
        "PVC 'ollama-amd-data', not declared in ai-generation",
    ),
    (
        "references",
        "HPA target that sets replicas",
        lambda d: add(d, open_webui_hpa(4)),
        "undoes the HPA",
    ),
    (
        "references",
        "PDB selecting nothing",
        lambda d: add(
            d,
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\n"
            "metadata: {name: open-webui, namespace: open-webui}\n"
            "spec:\n  minAvailable: 1\n  selector:\n    matchLabels: {app: openwebui}\n",
        ),
        "matches no pod template",
    ),
    (
        "storage",
        "chart values naming a class that does not exist",
        lambda d: set_values(
            d,
            "jupyterhub",
            lambda v: v["singleuser"]["storage"]["dynamic"].update(
                storageClass="nfs-client"
            ),
        ),
        "StorageClass 'nfs-client' does not exist",
    ),
    (
        "references",
        "chart values naming a PriorityClass that does not exist",
        lambda d: set_values(
            d, "dcgm-exporter", lambda v: v.update(priorityClassName="gpu")
        ),
        "PriorityClass 'gpu' does not exist",
    ),
    (
        "storage",
        "claim of a class that does not exist",
        lambda d: find(d, "PersistentVolumeClaim", "outputs")["spec"].update(
            storageClassName="nfs"
        ),
        "StorageClass 'nfs' does not exist",
    ),
    (
        "storage",
        "claim bound to a PV of another class",
        lambda d: find(d, "PersistentVolumeClaim", "models", "ai-training")[
            "spec"
        ].update(storageClassName="nfs-shared"),
        "they never bind",
    ),
    (
        "storage",
        "PV reserved for another claim",
        lambda d: find(d, "PersistentVolumeClaim", "models", "ai-training")[
            "spec"
        ].update(volumeName="models-ai-inference"),
        "reserved for ai-inference/models",
    ),
    (
        "storage",
        "claim without a class",
        lambda d: find(d, "PersistentVolumeClaim", "data", "open-webui")["spec"].pop(
            "storageClassName"
        ),
        "cluster's default class",
    ),
    (
        "storage",
        "NFS share the storage host does not export",
        lambda d: find(d, "StorageClass", "nfs-shared")["parameters"].update(
            share="/mnt/user"
        ),
        "is not an export",
    ),
    (
        "storage",
        "inline NFS volume (the seed's)",
        lambda d: pod(d, "Deployment", "comfyui")["volumes"].append(
            {
                "name": "x",
                "nfs": {"server": "192.168.1.244", "path": "/mnt/user/models"},
            }
        ),
        "inline nfs volume",
    ),
    (
        "storage",
        "hostPath in an app not pinned to a node (the seed's)",
        lambda d: pod(d, "Deployment", "ollama")["volumes"].append(
            {"name": "x", "hostPath": {"path": "/var/lib/ollama"}}
        ),
        "hostPath volume x",
    ),
    (
        "workloads",
        "no readiness probe",
        lambda d: container(d, "Deployment", "gpt-sovits").pop("readinessProbe"),
        "container gpt-sovits has no readinessProbe",
    ),
    (
        "workloads",
        "no memory limit",
        lambda d: container(d, "Deployment", "open-webui")["resources"].pop("limits"),
        "has no memory limit",
    ),
    (
        "workloads",
        "no priority class",
        lambda d: pod(d, "Deployment", "comfyui").pop("priorityClassName"),
        "no priorityClassName",
    ),
    (
        "workloads",
        "no node selection",
        lambda d: pod(d, "Deployment", "ollama").pop("nodeSelector"),
        "no node selection",
    ),
    (
        "services",
        "Service selecting no pods",
        lambda d: find(d, "Service", "tabbyapi")["spec"].update(
            selector={"app": "tabbyapi"}
        ),
        "matches no pod template",
    ),
    (
        "services",
        "named targetPort the pods lack",
        lambda d: find(d, "Service", "comfyui")["spec"]["ports"][0].update(
            targetPort="web"
        ),
        "targetPort 'web'",
    ),
    (
        "quotas",
        "limits.nvidia.com/gpu (the seed's)",
        lambda d: find(d, "ResourceQuota", "compute", "ai-inference")["spec"][
            "hard"
        ].update({"limits.nvidia.com/gpu": "2"}),
        "'limits.nvidia.com/gpu'",
    ),
    (
        "quotas",
        "bare extended resource",
        lambda d: find(d, "ResourceQuota", "compute", "jupyterhub")["spec"][
            "hard"
        ].update({"amd.com/gpu": "1"}),
        "'amd.com/gpu'",
    ),
    (
        "quota-fit",
        "quota smaller than its apps",
        lambda d: find(d, "ResourceQuota", "compute", "ai-generation")["spec"][
            "hard"
        ].update({"requests.memory": "24Gi"}),
        "requests.memory: the namespace's workloads need",
    ),
    (
        "quota-fit",
        "HPA maximum beyond the quota",
        lambda d: add(d, open_webui_hpa(20)),
        "limits.memory",
    ),
    (
        "no-secrets",
        "a Secret object",
        lambda d: add(
            d,
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: open-webui}\n"
            "stringData: {k: v}\n",
        ),
        "never live under k8s/",
    ),
    (
        "no-secrets",
        "literal password in env",
        lambda d: container(d, "Deployment", "comfyui")["env"].append(
            {"name": "WEB_PASSWORD", "value": "hunter2"}
        ),
        "env WEB_PASSWORD has a literal value",
    ),
    (
        "helm-charts",
        "unpinned chart",
        lambda d: find(d, "HelmChart", "cert-manager")["spec"].update(version="latest"),
        "not an exact chart version",
    ),
    (
        "helm-charts",
        "version range",
        lambda d: find(d, "HelmChart", "amd-gpu")["spec"].update(version=">=0.20"),
        "not an exact chart version",
    ),
    (
        "helm-charts",
        "plain-http repository",
        lambda d: find(d, "HelmChart", "jupyterhub")["spec"].update(
            repo="http://hub.jupyter.org/helm-chart/"
        ),
        "must be an https://",
    ),
    (
        "kueue",
        "LocalQueue of a missing ClusterQueue",
        lambda d: find(d, "LocalQueue", "amd")["spec"].update(clusterQueue="amd"),
        "ClusterQueue 'amd' does not exist",
    ),
    (
        "kueue",
        "GPU quota above the flavor's GPUs",
        lambda d: find(d, "ClusterQueue", "nvidia-batch")["spec"]["resourceGroups"][0][
            "flavors"
        ][0]["resources"][2].update(nominalQuota=4),
        "quota 4 exceeds the 2 GPUs",
    ),
    (
        "kueue",
        "queued Job not suspended",
        lambda d: find(d, "Job", "lora-emilie")["spec"].pop("suspend"),
        "suspend: true",
    ),
    (
        "kueue",
        "Job naming a queue its namespace lacks",
        lambda d: find(d, "Job", "lora-emilie")["metadata"]["labels"].update(
            {"kueue.x-k8s.io/queue-name": "gpu"}
        ),
        "queue 'gpu' is not a LocalQueue",
    ),
    (
        "network",
        "app namespace without default deny",
        lambda d: remove(d, "NetworkPolicy", "default-deny", "ai-training"),
        "ai-training has no default-deny",
    ),
    (
        "network",
        "internet egress that also opens the cluster",
        lambda d: find(d, "NetworkPolicy", "downloads", "ai-generation")["spec"][
            "egress"
        ][0]["to"][0]["ipBlock"].pop("except"),
        "without excepting it",
    ),
    (
        "network",
        "single host that is not in the inventory",
        lambda d: find(d, "NetworkPolicy", "egress", "open-webui")["spec"]["egress"][1][
            "to"
        ][0]["ipBlock"].update(cidr="192.168.1.99/32"),
        "not an inventory host",
    ),
    (
        "k3s-components",
        "two LoadBalancers on one port",
        lambda d: find(d, "Service", "gpt-sovits")["spec"]["ports"][0].update(
            port=8188
        ),
        "8188/TCP is already published by Service ai-generation/comfyui",
    ),
    (
        "k3s-components",
        "LoadBalancer on the API server port",
        lambda d: find(d, "Service", "open-webui")["spec"]["ports"][0].update(
            port=6443
        ),
        "port 6443 is a k3s host port",
    ),
    (
        "k3s-components",
        "Ingress while Traefik is disabled",
        lambda d: add(
            d,
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\n"
            "metadata: {name: webui, namespace: open-webui}\n"
            "spec:\n  defaultBackend:\n    service: {name: open-webui, port: {number: 8080}}\n",
        ),
        "disables traefik",
    ),
    (
        "inventory-values",
        "HSA_OVERRIDE_GFX_VERSION other than the host's",
        lambda d: container(d, "Deployment", "ollama-amd")["env"][0].update(
            value="10.3.0"
        ),
        "HSA_OVERRIDE_GFX_VERSION=10.3.0",
    ),
]


# cases about custom resources: checked against the upstream CRDs only when present
NEEDS_UPSTREAM = {
    "no upstream CRD",
    "'values_content' was unexpected",
    "'FIFO' is not one of ['StrictFIFO', 'BestEffortFIFO']",
    RETRY_REFUSED,
    "'serverSide' was unexpected) (helm.cattle.io/HelmChart-v0.17.1.yaml)",
    "cluster-scoped",
    "may not specify more than one issuer type",
    (
        "values hub: Additional properties are not allowed ('nodeSelektor' was unexpected) "
        "(jupyterhub 4.4.0 values schema)"
    ),
    (
        "values nfd.worker.tolerations: 'all' is not of type 'array' "
        "(node-feature-discovery 0.19.0 values schema)"
    ),
    "values serviceMonitr: dcgm-exporter 4.8.2 has no such key",
    "no upstream default values for chart 'dcgm-exporter' version '4.8.3'",
    "values node_selector uses label 'feature.node.kubernetes.io/pci-0300_1002.present'",
}


# checks whose failing case needs another inventory, with the test that shows it
OTHER_CASES = {
    "daemonsets": "test_upstream.py::test_gpu_daemonsets_tolerate_the_gpu_taints"
}


def test_every_check_has_a_failing_case() -> None:
    assert {c[0] for c in CASES} | set(OTHER_CASES) == set(CHECKS)


@pytest.mark.parametrize(
    ("check", "mutate", "expect"),
    [pytest.param(c, m, e, id=f"{c}: {what}") for c, what, m, e in CASES],
)
def test_check_catches(broken, check: str, mutate, expect: str) -> None:
    if expect in NEEDS_UPSTREAM and not UPSTREAM.is_dir():
        pytest.skip(MISSING)
    problems = run_all(broken(mutate), [check])
    assert any(expect in str(p) for p in problems), (
        f"expected a {check} problem containing {expect!r}, got:\n"
        + "\n".join(map(str, problems))
    )


def _inventory_variant(tmp_path: Path, edit: Callable[[str], str]):
    text = edit((REPO / "hosts" / "inventory.toml").read_text())
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return load_inventory(path)


def test_an_inventory_taint_keeps_untolerating_pods_off(broken, tmp_path: Path) -> None:
    inv = _inventory_variant(
        tmp_path,
        lambda t: t.replace(
            'tags = ["generation"]',
            'tags = ["generation"]\ntaints = ["hydra.io/gpu=true:NoSchedule"]',
        ),
    )
    problems = run_all(broken(lambda d: None, inv), ["node-labels"])
    assert any(
        "Deployment ai-generation/comfyui: no inventory node matches" in str(p)
        for p in problems
    )


def test_a_changed_rocm_version_in_the_inventory_is_caught(
    broken, tmp_path: Path
) -> None:
    inv = _inventory_variant(
        tmp_path,
        lambda t: t.replace(
            'rocm_gfx_version = "11.0.0"', 'rocm_gfx_version = "11.0.2"'
        ),
    )
    problems = run_all(broken(lambda d: None, inv), ["inventory-values"])
    assert any("hydra-amd has rocm_gfx_version '11.0.2'" in str(p) for p in problems)


def test_a_smaller_inventory_breaks_gpu_fit(broken, tmp_path: Path) -> None:
    inv = _inventory_variant(
        tmp_path,
        lambda t: t.replace(
            '{ vendor = "nvidia", model = "RTX 4090", vram_gb = 24, count = 1 },\n', ""
        ),
    )
    problems = run_all(broken(lambda d: None, inv), ["gpu-fit"])
    assert any("tabbyapi: asks for {'nvidia.com/gpu': 2}" in str(p) for p in problems)


def test_discovered_labels_are_allowed_but_not_invented_ones(broken) -> None:
    def mutate(d: Docs) -> None:
        pod(d, "Deployment", "comfyui")["nodeSelector"]["nvidia.com/gpu.product"] = (
            "NVIDIA-GeForce-RTX-5070-Ti"
        )

    assert run_all(broken(mutate), ["node-labels"]) == []


def test_broken_tree_passes_other_checks_untouched(tree: Tree) -> None:
    # the baseline the cases start from is clean, so each case's problem is its own
    assert run_all(tree) == []


def test_hostpath_is_fine_when_the_pod_is_pinned_to_its_node(broken) -> None:
    def mutate(d: Docs) -> None:
        spec = pod(d, "Deployment", "ollama")
        spec["volumes"].append({"name": "x", "hostPath": {"path": "/var/lib/ollama"}})
        spec["nodeSelector"]["kubernetes.io/hostname"] = "hydra-compute"

    assert run_all(broken(mutate), ["storage"]) == []


def test_command_line_reports_problems_and_exit_codes(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).with_name("manifest_checks.py")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    ok = run()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 problems" in ok.stderr

    bad = tmp_path / "k8s"
    bad.mkdir()
    (bad / "q.yaml").write_text(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: default}\n"
        "spec:\n  hard:\n    limits.nvidia.com/gpu: '1'\n"
    )
    failed = run(str(bad))
    assert failed.returncode == 1
    assert (
        "q.yaml#0 ResourceQuota default/q: [quotas] 'limits.nvidia.com/gpu'"
        in failed.stdout
    )

    (bad / "broken.yaml").write_text("a: [\n")
    assert run(str(bad)).returncode == 2
    assert run("--inventory", str(tmp_path / "missing.toml")).returncode == 2


@pytest.mark.parametrize(
    ("component", "expect"),
    [
        ("servicelb", "disables servicelb"),
        ("metrics-server", "disables metrics-server"),
        ("local-storage", "disables local-storage"),
    ],
)
def test_k3s_components_the_tree_needs(
    broken, tmp_path: Path, component: str, expect: str
) -> None:
    inv = _inventory_variant(
        tmp_path,
        lambda t: t.replace(
            'disable = ["traefik"]', f'disable = ["traefik", "{component}"]'
        ),
    )
    # the tree has no HPA since Open WebUI runs one replica: add one for metrics-server
    problems = run_all(
        broken(lambda d: add(d, open_webui_hpa(4)), inv), ["k3s-components"]
    )
    assert any(expect in str(p) for p in problems), "\n".join(map(str, problems))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        (4, 4.0),
        ("16Gi", 16 * 2**30),
        ("4G", 4e9),
        ("1e3", 1000.0),
    ],
)
def test_quantity(text: object, value: float) -> None:
    from manifest_checks import quantity

    assert quantity(text) == value


def test_quantity_refuses_nonsense() -> None:
    from manifest_checks import quantity

    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity("16 GB")


def test_quota_items_that_are_not_extended_resources_pass(broken) -> None:
    def mutate(d: Docs) -> None:
        find(d, "ResourceQuota", "compute", "open-webui")["spec"]["hard"].update(
            {
                "nfs-shared.storageclass.storage.k8s.io/requests.storage": "1Ti",
                "count/deployments.apps": "10",
                "requests.storage": "2Ti",
            }
        )

    assert run_all(broken(mutate), ["quotas", "schema"]) == []
