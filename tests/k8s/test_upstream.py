"""The k8s/ tree against upstream data (../shared/upstream) instead of our own beliefs,
and the defects of issue 13 that this way of testing exposed, each pinned by a test."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from crd_schema import crd_errors
from hydradeploy.inventory import load_inventory
from hydradeploy.manifests import Doc, PodTemplate, Tree, run_all
from hydradeploy.manifests.chart_defaults import ChartDefaults
from hydradeploy.manifests.helm_values import chart_values, coalesce
from hydradeploy.manifests.tree import chart_name
from hydradeploy.versions import HELM_CONTROLLER_VERSIONS, KUBERNETES_VERSION
from k8s_fixtures import (  # noqa: F401 (fixtures)
    REPO,
    broken_fixture,
    inventory_fixture,
    k8s_docs_fixture,
    tree_fixture,
)
from upstream_data import (
    CRD_CHART_RELEASES,
    MISSING,
    UPSTREAM,
    helm_controller_versions,
    served_crds,
    values_schemas,
)
from values_schema import values_errors

needs_upstream = pytest.mark.skipif(not UPSTREAM.is_dir(), reason=MISSING)


def _doc(tree: Tree, kind: str, name: str) -> Doc:
    return next(d for d in tree.docs if d.kind == kind and d.name == name)


def _pod(tree: Tree, owner: str) -> PodTemplate:
    return next(p for p in tree.pods if p.owner == owner)


# --------------------------------------------------------------------------- CRDs


@needs_upstream
def test_helm_controller_versions_come_from_the_k3s_range() -> None:
    # one place: hydradeploy.versions; every version there has its CRDs in the data
    versions = helm_controller_versions()
    assert versions == HELM_CONTROLLER_VERSIONS and len(versions) >= 1
    crds = served_crds(KUBERNETES_VERSION)
    for kind in ("HelmChart", "HelmChartConfig"):
        sources = [c.source for c in crds[("helm.cattle.io", kind)]]
        assert sources == [f"helm.cattle.io/{kind}-{v}.yaml" for v in versions]


@needs_upstream
def test_every_custom_resource_validates_against_every_served_crd(tree: Tree) -> None:
    crds = served_crds(KUBERNETES_VERSION)
    checked, problems = 0, []
    for d in tree.docs:
        for crd in crds.get((d.group, d.kind), []):
            checked += 1
            problems += [f"{d}: {e}" for e in crd_errors(d.obj, crd)]
    assert not problems, "\n".join(problems)
    helmcharts = len(tree.of_kind("HelmChart"))
    versions = len(helm_controller_versions())
    # every HelmChart against each helm-controller release, and the other kinds too
    assert checked >= helmcharts * versions + len(tree.of_kind("ClusterQueue")) > 0


@needs_upstream
def test_pinned_charts_have_upstream_data(tree: Tree) -> None:
    for d in tree.of_kind("HelmChart"):
        assert tree.defaults_of(d) is not None, f"{d}: no upstream defaults"
        name = chart_name(d)
        if name in CRD_CHART_RELEASES:
            assert str(d.spec["version"]) == CRD_CHART_RELEASES[name], (
                f"{d}: the upstream CRDs are of {name} {CRD_CHART_RELEASES[name]}"
            )


# --------------------------------------------------------------------------- values


def test_helm_coalesce_deletes_on_null_merges_maps_replaces_lists() -> None:
    defaults = {
        "node_selector": {
            "feature.node.kubernetes.io/pci-0300_1002.present": "true",
            "a": "1",
        },
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "image": {"tag": "1.0", "repository": "r"},
        "gone": {"x": 1},
    }
    user = {
        "node_selector": {
            "feature.node.kubernetes.io/pci-0300_1002.present": None,
            "b": "2",
        },
        "tolerations": [{"operator": "Exists"}],
        "image": {"tag": "2.0"},
        "gone": None,
        "unknown": None,
    }
    assert coalesce(user, defaults) == {
        "node_selector": {"a": "1", "b": "2"},
        "tolerations": [{"operator": "Exists"}],
        "image": {"tag": "2.0", "repository": "r"},
        "unknown": None,  # a null for a key the chart lacks stays (Helm v3)
    }
    assert (
        user["node_selector"]["feature.node.kubernetes.io/pci-0300_1002.present"]
        is None
    )


def test_subcharts_get_their_section_coalesced_when_their_condition_holds() -> None:
    sub = ChartDefaults("sub", "1", {"worker": {"a": 1, "b": 2}})
    parent = ChartDefaults(
        "parent", "1", {"sub": {"worker": {"b": 3}}}, {"sub": (sub, ("sub.enabled",))}
    )
    on = chart_values({"sub": {"enabled": True}}, parent)
    assert on["sub"] == {"enabled": True, "worker": {"a": 1, "b": 3}}
    off = chart_values({"sub": {"enabled": False}}, parent)
    assert off["sub"] == {"enabled": False, "worker": {"b": 3}}
    # globals reach the subchart, the parent's winning (Helm coalesceGlobals)
    glob = chart_values(
        {"global": {"x": 1}, "sub": {"global": {"x": 2, "y": 3}}}, parent
    )
    assert glob["sub"]["global"] == {"x": 1, "y": 3}


@needs_upstream
def test_values_validate_against_the_charts_schemas(tree: Tree) -> None:
    schemas = values_schemas()
    validated = set()
    for d in tree.of_kind("HelmChart"):
        chart = tree.defaults_of(d)
        assert chart is not None
        user = yaml.safe_load(d.spec.get("valuesContent") or "{}") or {}
        assert values_errors(user, chart, schemas) == []
        for c in [chart, *(s for s, _ in chart.subcharts.values())]:
            if (c.chart, c.version) in schemas:
                validated.add(c.chart)
    assert validated == {"jupyterhub", "cert-manager", "node-feature-discovery"}


@needs_upstream
def test_discovered_pci_labels_follow_our_nfd_config(tree: Tree) -> None:
    # nvidia-device-plugin 0.20.0 values.yaml: nfd.worker.config.sources.pci
    # deviceLabelFields [vendor], deviceClassWhitelist ["02", "03"]
    pci = {
        n.name: sorted(
            k for k in n.labels if k.startswith("feature.node.kubernetes.io/pci-")
        )
        for n in tree.nodes
    }
    assert pci == {
        "hydra-ai": ["feature.node.kubernetes.io/pci-10de.present"],
        "hydra-compute": ["feature.node.kubernetes.io/pci-10de.present"],
        "hydra-amd": ["feature.node.kubernetes.io/pci-1002.present"],
        "hydra-amd-vm1": [],
        "hydra-amd-vm2": [],
    }
    # and the AMD chart's class+vendor label is not among what the cluster sets
    assert not tree.label_may_exist("feature.node.kubernetes.io/pci-0300_1002.present")


# --------------------------------------------------------------------------- defect 3


@needs_upstream
def test_amd_device_plugin_runs_on_the_amd_node(tree: Tree) -> None:
    values = tree.values(_doc(tree, "HelmChart", "amd-gpu"))
    assert values["node_selector_enabled"] is True
    spec = {
        "nodeSelector": values["node_selector"],
        "tolerations": values["tolerations"],
    }
    assert [n.name for n in tree.candidate_nodes(spec)] == ["hydra-amd"]


# --------------------------------------------------------------------------- defect 4


@needs_upstream
def test_jupyterhub_admits_approved_users_and_never_over_plain_http(tree: Tree) -> None:
    values = tree.values(_doc(tree, "HelmChart", "jupyterhub"))
    config = values["hub"]["config"]
    assert (
        config["JupyterHub"]["authenticator_class"]
        == "nativeauthenticator.NativeAuthenticator"
    )
    # JupyterHub 5: nobody gets in without an allow rule
    auth = config["Authenticator"]
    assert auth.get("allow_all") is True or auth.get("allowed_users")
    # NativeAuthenticator keeps its own gate: an admin approves each sign-up
    assert config["NativeAuthenticator"].get("open_signup", False) is False
    # the admin's first sign-up and every password travel over TLS only
    proxy = values["proxy"]
    assert proxy["https"]["enabled"] is True
    assert proxy["https"]["type"] == "secret"
    assert proxy["service"]["disableHttpPort"] is True
    secret = proxy["https"]["secret"]["name"]
    ns = _doc(tree, "HelmChart", "jupyterhub").spec["targetNamespace"]
    certs = [c for c in tree.of_kind("Certificate") if c.namespace == ns]
    assert [c.spec["secretName"] for c in certs] == [secret]


def test_jupyterhub_certificate_names_every_node_address(tree: Tree) -> None:
    # ServiceLB publishes proxy-public on every node: each address must be in the cert
    cert = next(c for c in tree.of_kind("Certificate") if c.namespace == "jupyterhub")
    addresses = {n["address"] for n in tree.inventory.expected_nodes().values()}
    assert set(cert.spec["ipAddresses"]) == addresses
    issuer = cert.spec["issuerRef"]
    assert issuer["name"] in tree.names("ClusterIssuer")


# --------------------------------------------------------------------------- defect 5

# What each NVIDIA GPU image runs on, read from the image's own build files (docs/k8s.md
# has the same table for people). PyTorch wheels from download.pytorch.org/whl/cu128 are
# the CUDA 12.8 builds the issue names as the first with sm_120 kernels.
IMAGE_ARCHES: dict[str, frozenset[str]] = {
    # theroyallab/tabbyAPI pyproject.toml at e632af41: torch 2.9.0+cu128
    "ghcr.io/theroyallab/tabbyapi:latest": frozenset({"sm_89", "sm_120"}),
    # YanWenKun/ComfyUI-Docker cu128-slim/Dockerfile: CUDA 12.8, whl/cu128
    "docker.io/yanwk/comfyui-boot:cu128-slim": frozenset({"sm_89", "sm_120"}),
    # RVC-Boss/GPT-SoVITS at 48b1a016: install.sh --device CU128, whl/cu128
    "docker.io/xxxxrt666/gpt-sovits:latest-cu128": frozenset({"sm_89", "sm_120"}),
    # bmaltais/kohya_ss v25.2.1 Dockerfile: cuda-nvcc-12-8, UV_INDEX whl/cu128
    "ghcr.io/bmaltais/kohya-ss-gui:v25.2.1": frozenset({"sm_89", "sm_120"}),
    # ollama/ollama v0.13.5 CMakePresets.json "CUDA 12": CMAKE_CUDA_ARCHITECTURES
    # 50;52;60;61;70;75;80;86;89;90;90a;120 (Dockerfile: CUDA 12.8)
    "ollama/ollama:0.13.5": frozenset({"sm_89", "sm_120"}),
}
# The inventory's GPU models: compute capability 12.0 (GeForce RTX 50 series) and 8.9
# (RTX 4090), NVIDIA's CUDA GPUs list.
MODEL_ARCH = {"RTX 5090": "sm_120", "RTX 5070 Ti": "sm_120", "RTX 4090": "sm_89"}


def test_gpu_images_run_on_the_gpus_of_their_nodes(tree: Tree) -> None:
    for pod in tree.pods:
        if "nvidia.com/gpu" not in pod.gpu_request() or pod.doc.kind == "HelmChart":
            continue
        for c in pod.containers():
            image = str(c["image"])
            assert image in IMAGE_ARCHES, (
                f"{pod.owner}: {image} has no checked GPU support"
            )
            for node in tree.candidate_nodes(pod.spec):
                for gpu in tree.inventory.hosts[node.host].gpus:
                    arch = MODEL_ARCH[gpu.model]
                    assert arch in IMAGE_ARCHES[image], (
                        f"{pod.owner}: {image} lacks {arch}"
                    )


def test_docs_say_which_gpus_each_image_supports() -> None:
    text = (REPO / "docs" / "k8s.md").read_text()
    for image in IMAGE_ARCHES:
        assert f"`{image}`" in text, f"docs/k8s.md does not list {image}"


def test_tabbyapi_loads_a_format_its_image_still_has(tree: Tree) -> None:
    # tabbyAPI c8b9a8f removed the ExLlamaV2 backend; config_sample.yml: backend exllamav3
    cm = _doc(tree, "ConfigMap", "tabbyapi-config")
    model = yaml.safe_load(cm.obj["data"]["config.yml"])["model"]
    assert model["backend"] == "exllamav3"
    assert "exl2" not in model["model_dir"] + model["model_name"]
    assert (
        model["cache_size"] % 256 == 0 and model["cache_size"] >= model["max_seq_len"]
    )


# --------------------------------------------------------------------------- defect 6


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if not selector:
        return True
    if not (selector.get("matchLabels") or {}).items() <= dict(labels).items():
        return False
    for e in selector.get("matchExpressions") or []:
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
    return True


def _allowed(
    tree: Tree, pod: PodTemplate, direction: str, port: int, peer: str
) -> bool:
    """Whether the namespace's NetworkPolicies let `pod` talk to (Egress) or hear from
    (Ingress) the address `peer` on TCP `port` (policies add up; no policy: allowed)."""
    kind, key = ("Egress", "to") if direction == "Egress" else ("Ingress", "from")
    policies = [
        d
        for d in tree.of_kind("NetworkPolicy")
        if d.namespace == pod.namespace
        and kind in (d.spec.get("policyTypes") or [])
        and _selects(d.spec.get("podSelector") or {}, pod.labels)
    ]
    if not policies:
        return True
    address = ipaddress.ip_address(peer)
    for d in policies:
        for rule in d.spec.get(kind.lower()) or []:
            ports = rule.get("ports")
            if ports and not any(p.get("port") == port for p in ports):
                continue
            peers = rule.get(key)
            if not peers:
                return True
            for p in peers:
                block = p.get("ipBlock")
                if block and _in_block(address, block):
                    return True
    return False


def _in_block(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, block: Mapping[str, Any]
) -> bool:
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(
        address in ipaddress.ip_network(e) for e in block.get("except") or []
    )


HUGGING_FACE = "18.244.202.60"  # any public address stands for "the internet" here


def test_lora_job_may_fetch_its_tokenizers_over_https(tree: Tree) -> None:
    pod = _pod(tree, "Job ai-training/lora-emilie")
    assert _allowed(tree, pod, "Egress", 443, HUGGING_FACE)
    assert not _allowed(tree, pod, "Egress", 80, HUGGING_FACE)  # only what it needs


def test_open_webui_runs_one_replica_on_its_embedded_vector_store(tree: Tree) -> None:
    d = _doc(tree, "Deployment", "open-webui")
    env = {
        e["name"]
        for c in _pod(tree, "Deployment open-webui/open-webui").containers()
        for e in c.get("env") or []
    }
    if (
        "VECTOR_DB" not in env
    ):  # embedded ChromaDB (SQLite) unless an external store is set
        assert d.spec.get("replicas") == 1
        assert d.spec["strategy"]["type"] == "Recreate"
        assert not [
            h
            for h in tree.of_kind("HorizontalPodAutoscaler")
            if h.spec["scaleTargetRef"]["name"] == "open-webui"
        ]


def test_gpt_sovits_publishes_its_inference_ui_and_has_shared_memory(
    tree: Tree,
) -> None:
    pod = _pod(tree, "Deployment ai-generation/gpt-sovits")
    (c,) = pod.containers()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    # RVC-Boss/GPT-SoVITS config.py: webui_port_main 9874, webui_port_infer_tts 9872,
    # api_port 9880
    assert {ports["webui"], ports["inference-ui"], ports["api"]} == {9874, 9872, 9880}
    svc = _doc(tree, "Service", "gpt-sovits")
    assert {p["port"] for p in svc.spec["ports"]} >= {9874, 9872, 9880}
    for port in (9874, 9872, 9880):
        assert _allowed(tree, pod, "Ingress", port, "192.168.1.50"), port
    shm = [m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    assert shm
    (vol,) = [v for v in pod.spec["volumes"] if v["name"] == shm[0]["name"]]
    assert vol["emptyDir"]["medium"] == "Memory"


def test_dcgm_exporter_is_reachable_from_the_unraid_prometheus(tree: Tree) -> None:
    chart = _doc(tree, "HelmChart", "dcgm-exporter")
    ns = chart.spec["targetNamespace"]
    (svc,) = [
        d
        for d in tree.of_kind("Service")
        if d.namespace == ns and d.spec.get("type") == "NodePort"
    ]
    # the chart's selector labels (templates/_helpers.tpl), release = the HelmChart name
    assert svc.spec["selector"] == {
        "app.kubernetes.io/name": "dcgm-exporter",
        "app.kubernetes.io/instance": chart.name,
    }
    (port,) = svc.spec["ports"]
    assert port["targetPort"] == 9400 and 30000 <= port["nodePort"] <= 32767
    assert svc.spec["externalTrafficPolicy"] == "Local"  # each node's own GPUs
    prometheus = tree.inventory.storage["hydra-storage"].address
    pod = PodTemplate(chart, "dcgm-exporter pods", ns, svc.spec["selector"], {})
    assert _allowed(tree, pod, "Ingress", 9400, prometheus)
    assert not _allowed(tree, pod, "Ingress", 9400, "192.168.1.50")  # only Prometheus


def test_gpu_daemonsets_tolerate_the_gpu_taints(broken, tmp_path: Path) -> None:
    # the HA example taints its GPU workers nvidia.com/gpu=present:NoSchedule
    text = (REPO / "hosts" / "inventory.toml").read_text()
    tainted = (
        text.replace(
            'tags = ["generation"]',
            'tags = ["generation"]\ntaints = ["nvidia.com/gpu=present:NoSchedule"]',
        )
        .replace(
            'tags = ["edge"]',
            'tags = ["edge"]\ntaints = ["amd.com/gpu=present:NoSchedule"]',
        )
        .replace(
            # a taint of the user's own, which no chart default knows
            'tags = ["inference"]',
            'tags = ["inference"]\ntaints = ["hydra.io/reserved=true:NoSchedule"]',
        )
    )
    path = tmp_path / "inventory.toml"
    path.write_text(tainted)
    inv = load_inventory(path)
    assert run_all(broken(lambda d: None, inv), ["daemonsets"]) == []

    def untolerating(docs: list[Doc]) -> None:
        o = next(
            d.obj for d in docs if d.kind == "HelmChart" and d.name == "dcgm-exporter"
        )
        values = yaml.safe_load(o["spec"]["valuesContent"])
        values.pop("tolerations")
        o["spec"]["valuesContent"] = yaml.safe_dump(values)

    problems = run_all(broken(untolerating, inv), ["daemonsets"])
    if UPSTREAM.is_dir():  # the chart default tolerates only the control plane
        assert [p.message for p in problems] == [
            (
                "values: the DaemonSet skips node hydra-ai, whose taints "
                "(hydra.io/reserved=true:NoSchedule) its tolerations do not cover"
            ),
            (
                "values: the DaemonSet skips node hydra-compute, whose taints "
                "(nvidia.com/gpu=present:NoSchedule) its tolerations do not cover"
            ),
        ]


def test_chart_pods_must_tolerate_the_taints_of_the_nodes_they_select(
    broken, tmp_path: Path
) -> None:
    # taint the CPU microVMs: the hub, proxy and user scheduler select only them and
    # tolerate nothing, so the values Helm renders place them nowhere
    text = (REPO / "hosts" / "inventory.toml").read_text()
    tainted = text.replace(
        'labels = { "hydra.io/node-class" = "cpu" } }',
        'labels = { "hydra.io/node-class" = "cpu" }, taints = ["hydra.io/vm=true:NoSchedule"] }',
    )
    assert tainted != text
    path = tmp_path / "inventory.toml"
    path.write_text(tainted)
    problems = [
        str(p)
        for p in run_all(broken(lambda d: None, load_inventory(path)), ["node-labels"])
    ]
    assert any(
        "HelmChart kube-system/jupyterhub" in p
        and "values hub.nodeSelector matches no inventory node (taints included)" in p
        for p in problems
    ), "\n".join(problems)
