"""The repository's k8s/ tree passes every check, and its platform matches the inventory."""

from __future__ import annotations

import re

import pytest
from hydradeploy.versions import KUBERNETES_VERSION
from k8s_fixtures import (  # noqa: F401 (fixtures)
    CONVERTED,
    K8S,
    REPO,
    broken_fixture,
    inventory_fixture,
    k8s_docs_fixture,
    tree_fixture,
)
from manifest_checks import (
    CHECKS,
    Doc,
    Tree,
    load_documents,
    referenced_secrets,
    run_all,
    schema_validator,
)
from upstream_data import MISSING


def _fmt(problems: list) -> str:
    return "\n".join(str(p) for p in problems)


def test_tree_has_platform_and_apps(tree: Tree) -> None:
    tops = {d.path.relative_to(K8S).parts[0] for d in tree.docs}
    assert tops == {"platform", "apps"}
    # each app namespace's manifests live in k8s/apps/<namespace>/
    for d in tree.docs:
        rel = d.path.relative_to(K8S).parts
        ns = d.spec.get("targetNamespace") if d.kind == "HelmChart" else d.namespace
        if rel[0] == "apps" and ns:
            assert rel[1] == ns, f"{d} is in apps/{rel[1]}/ but serves namespace {ns}"


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_check_passes_on_the_tree(tree: Tree, name: str) -> None:
    problems = run_all(tree, [name])
    assert not problems, _fmt(problems)


def test_schemas_are_those_of_the_cluster_version() -> None:
    sv = schema_validator(KUBERNETES_VERSION)
    want = ".".join(KUBERNETES_VERSION.split(".")[:2])
    assert sv.version.startswith(want + "."), (
        f"kubernetes-validate has no {want} schemas (closest {sv.version}); update it"
    )


def test_converted_output_validates(inventory, k8s_docs: list[Doc]) -> None:
    """The converter's output (k8s/converted/) is held to the same schemas and secret
    rules; its own tests check the rest."""
    if not CONVERTED.is_dir():
        pytest.skip("no k8s/converted/ yet")
    docs = load_documents(CONVERTED)
    t = Tree(docs, inventory, KUBERNETES_VERSION)
    problems = run_all(t, ["schema", "no-secrets"])
    # and no converted object silently replaces a hand-written one
    problems += run_all(
        Tree(k8s_docs + docs, inventory, KUBERNETES_VERSION), ["unique"]
    )
    assert not problems, _fmt(problems)


def test_manifest_file_names_map_to_distinct_targets() -> None:
    # modules/lib/manifests.nix names each file hydra-<path with / as ->; two files
    # (k8s/converted/ included) mapping to the same name make the flake refuse to evaluate.
    files = sorted(
        p.relative_to(K8S).as_posix()
        for p in [*K8S.rglob("*.yaml"), *K8S.rglob("*.yml")]
        if not p.name.startswith(".") and p.stem != "kustomization"
    )
    targets = ["hydra-" + f.replace("/", "-") for f in files]
    assert len(set(targets)) == len(targets)


def test_no_file_declares_a_secret() -> None:
    # the same test modules/lib/manifests.nix applies: a `kind: Secret` line anywhere
    for path in sorted(K8S.rglob("*.y*ml")):
        for line in path.read_text().splitlines():
            assert not re.fullmatch(r"kind:\s*[\"']?Secret[\"']?\s*", line), path


def test_priority_classes(tree: Tree) -> None:
    pcs = {d.name: d.obj for d in tree.of_kind("PriorityClass")}
    order = ["inference-critical", "generation-high", "training-medium", "batch-low"]
    assert list(pcs) == order
    values = [pcs[n]["value"] for n in order]
    assert values == sorted(values, reverse=True)
    assert [n for n, o in pcs.items() if o.get("globalDefault")] == ["batch-low"]


def test_runtime_class_nvidia(tree: Tree) -> None:
    (rc,) = tree.of_kind("RuntimeClass")
    assert (rc.name, rc.obj["handler"]) == ("nvidia", "nvidia")


def _chart(tree: Tree, name: str) -> Doc:
    return next(d for d in tree.of_kind("HelmChart") if d.name == name)


@pytest.mark.parametrize(
    ("chart", "vendor", "selector_path"),
    [
        ("nvidia-device-plugin", "nvidia", ("nodeSelector",)),
        ("dcgm-exporter", "nvidia", ("nodeSelector",)),
        ("amd-gpu", "amd", ("node_selector",)),
    ],
)
def test_device_plugins_run_exactly_on_their_vendors_nodes(
    tree: Tree, chart: str, vendor: str, selector_path: tuple[str, ...]
) -> None:
    # the values Helm renders: ours coalesced with the chart's defaults (a default key we
    # do not null stays: the AMD chart's pci-0300_1002 label, issue 13 defect 3)
    if not tree.chart_defaults:
        pytest.skip(MISSING)
    values = tree.values(_chart(tree, chart))
    sel = values
    for key in selector_path:
        sel = sel[key]
    tolerations = values.get("tolerations") or []
    on = {
        n.name
        for n in tree.candidate_nodes({"nodeSelector": sel, "tolerations": tolerations})
    }
    resource = f"{vendor}.com/gpu"
    assert on == {n.name for n in tree.nodes if n.gpus.get(resource)}


def test_nvidia_pods_land_only_on_nvidia_nodes(tree: Tree) -> None:
    for pod in tree.pods:
        if "nvidia.com/gpu" in pod.gpu_request():
            for node in tree.candidate_nodes(pod.spec):
                assert node.gpus.get("nvidia.com/gpu"), (
                    f"{pod.owner} may land on {node.name}"
                )


def test_tabbyapi_takes_every_gpu_of_the_mixed_node(tree: Tree) -> None:
    pod = next(p for p in tree.pods if p.owner == "Deployment ai-inference/tabbyapi")
    (node,) = tree.candidate_nodes(pod.spec)
    host = tree.inventory.hosts[node.host]
    assert len({g.model for g in host.gpus}) > 1, "tabbyapi is meant for the mixed node"
    assert pod.gpu_request() == host.gpu_resources()


def test_every_app_namespace_has_quota_and_limits(tree: Tree) -> None:
    apps = [
        d.name
        for d in tree.of_kind("Namespace")
        if d.labels().get("hydra.io/tier") == "apps"
    ]
    assert apps
    for ns in apps:
        assert tree.names("ResourceQuota", ns), ns
        assert tree.names("LimitRange", ns), ns


def test_expected_secrets_are_documented(tree: Tree) -> None:
    doc = (REPO / "docs" / "k8s.md").read_text()
    secrets = referenced_secrets(tree)
    assert secrets
    for ref in secrets:
        assert f"`{ref}`" in doc, f"docs/k8s.md does not list the Secret {ref}"


def test_charts_are_documented_with_their_versions(tree: Tree) -> None:
    doc = (REPO / "docs" / "k8s.md").read_text()
    for d in tree.of_kind("HelmChart"):
        chart = d.spec["chart"].rpartition("/")[2]
        assert re.search(
            rf"`{re.escape(chart)}`\s*\|\s*{re.escape(d.spec['version'])}\b", doc
        ), f"docs/k8s.md: chart table lacks `{chart}` | {d.spec['version']}"
