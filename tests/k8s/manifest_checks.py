"""Checks of the k8s/ tree: schemas, CRD rules and cross-checks against the inventory.

Reusable on any directory of manifests (k8s/, k8s/converted/, a test's tmp dir) and any
inventory. Each check is a function `(Tree) -> list[Problem]`; `run_all` runs them all.
A Problem names the file, the document and the object, so a failing test reads like a
review comment. The schemas are kubernetes-validate's strict JSON schemas, loaded once
per process; CRD documents are checked against the rules in crd_rules.py.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from crd_rules import CRD_RULES, CrdRule
from hydradeploy.inventory import Inventory
from referencing import Registry, Resource

# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Doc:
    path: Path
    index: int  # position of the document in its file, from 0
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace", ""))

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.obj.get("spec")
        return spec if isinstance(spec, dict) else {}

    def labels(self) -> dict[str, str]:
        return dict((self.obj.get("metadata") or {}).get("labels") or {})

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.path}#{self.index} {self.kind} {ns}{self.name}"


@dataclass(frozen=True)
class Problem:
    where: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.check}] {self.message}"


class ManifestError(Exception):
    """A file that is not a list of YAML mappings."""


def load_documents(root: Path) -> list[Doc]:
    """Every document of every *.yaml / *.yml under root, in path order."""
    docs: list[Doc] = []
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        try:
            loaded = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            raise ManifestError(f"{path}: not valid YAML: {exc}") from None
        for i, obj in enumerate(loaded):
            if obj is None:
                continue
            if not isinstance(obj, dict):
                raise ManifestError(f"{path}#{i}: a document must be a mapping")
            docs.append(Doc(path, i, obj))
    return docs


# --------------------------------------------------------------------------- schemas


class SchemaValidator:
    """kubernetes-validate's strict schemas for one Kubernetes version, each schema file
    and the shared definitions read once (kubernetes_validate.validate re-reads the 1.5 MB
    definitions for every document)."""

    def __init__(self, version: str) -> None:
        base = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
        want = _minor(version)
        available = sorted(
            (_minor(p.name[1:].split("-")[0]), p.name)
            for p in base.iterdir()
            if p.name.startswith("v") and p.name.endswith("-local-strict")
        )
        usable = [name for minor, name in available if minor <= want]
        if not usable:
            raise ValueError(
                f"kubernetes-validate has no schemas for Kubernetes {version}"
            )
        self.schema_dir = base.joinpath(usable[-1])
        self.version = usable[-1][1:].split("-")[0]
        defs = json.loads(self.schema_dir.joinpath("_definitions.json").read_text())
        self.registry: Registry[Any] = Resource.from_contents(defs) @ Registry()
        self._validators: dict[
            tuple[str, str], jsonschema.protocols.Validator | None
        ] = {}

    def _validator(
        self, api_version: str, kind: str
    ) -> jsonschema.protocols.Validator | None:
        key = (api_version, kind)
        if key not in self._validators:
            # kubernetes-validate's file naming: apps/v1 -> apps-v1, rbac.authorization.k8s.io/v1 -> rbac-v1
            munged = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            f = self.schema_dir.joinpath(f"{kind.lower()}-{munged}.json")
            if f.is_file():
                schema = json.loads(f.read_text())
                self._validators[key] = jsonschema.Draft202012Validator(
                    schema, registry=self.registry
                )
            else:
                self._validators[key] = None
        return self._validators[key]

    def has_schema(self, api_version: str, kind: str) -> bool:
        return self._validator(api_version, kind) is not None

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        v = self._validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if v is None:
            raise KeyError("no schema")
        out = []
        for err in sorted(
            v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))
        ):
            path = ".".join(str(p) for p in err.absolute_path) or "(document)"
            out.append(f"{path}: {_short(err.message)}")
        return out


def _minor(version: str) -> tuple[int, int]:
    parts = version.lstrip("v").split(".")
    return int(parts[0]), int(parts[1])


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@cache
def schema_validator(version: str) -> SchemaValidator:
    return SchemaValidator(version)


# --------------------------------------------------------------------------- the cluster


# Labels no inventory declares but that exist on nodes once the platform runs: k3s's own,
# and the discovered ones (NFD, NVIDIA GFD, the AMD labeller). Only these prefixes are
# allowed without an inventory host carrying the key; docs/k8s.md lists them.
DISCOVERED_LABEL_PREFIXES = (
    "feature.node.kubernetes.io/",  # node-feature-discovery
    "nvidia.com/",  # GPU feature discovery: nvidia.com/gpu.product, gpu.memory, cuda.*
    "amd.com/",  # AMD node labeller: amd.com/gpu.family, gpu.device-id, …
)
BUILTIN_PRIORITY_CLASSES = {"system-node-critical", "system-cluster-critical"}
BUILTIN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
BUILTIN_STORAGE_CLASSES = {"local-path"}  # k3s's local-path-provisioner
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
SECRET_NAME = re.compile(
    r"(PASSW(OR)?D|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.IGNORECASE
)


@dataclass(frozen=True)
class Node:
    name: str
    host: str
    labels: Mapping[str, str]
    taints: tuple[tuple[str, str, str], ...]  # key, value, effect
    gpus: Mapping[str, int]
    rocm_gfx_version: str | None = None


def cluster_nodes(inv: Inventory) -> list[Node]:
    """The inventory's nodes with the labels k3s adds on its own."""
    nodes = []
    for name, n in inv.expected_nodes().items():
        host = inv.hosts[n["host"]]
        arch = "arm64" if host.system.startswith("aarch64") else "amd64"
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            **n["labels"],
        }
        if n["role"] == "server":
            labels["node-role.kubernetes.io/control-plane"] = "true"
            labels["node-role.kubernetes.io/master"] = "true"
            if inv.embedded_etcd:
                labels["node-role.kubernetes.io/etcd"] = "true"
        taints = []
        for spec in n["taints"]:
            body, _, effect = spec.rpartition(":")
            key, _, value = body.partition("=")
            taints.append((key, value, effect))
        nodes.append(
            Node(
                name=name,
                host=n["host"],
                labels=labels,
                taints=tuple(taints),
                gpus=dict(n["gpus"]),
                rocm_gfx_version=host.rocm_gfx_version if name == host.name else None,
            )
        )
    return nodes


# --------------------------------------------------------------------------- pod specs


@dataclass(frozen=True)
class PodTemplate:
    """A pod spec found in a workload (or synthesised from a chart's values)."""

    doc: Doc
    owner: str  # "Deployment ai-inference/tabbyapi", "JupyterHub profile gpu-1"
    namespace: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]

    def containers(self) -> list[dict[str, Any]]:
        return [c for c in self.spec.get("containers") or [] if isinstance(c, dict)]

    def gpu_request(self) -> dict[str, int]:
        """Effective per-pod request of each GPU resource (containers summed, the largest
        init container if bigger), reading requests or, failing that, limits."""

        def amount(c: Mapping[str, Any], res: str) -> int:
            r = c.get("resources") or {}
            v = (r.get("requests") or {}).get(res, (r.get("limits") or {}).get(res, 0))
            return int(v)

        out = {}
        for res in GPU_RESOURCES:
            main = sum(amount(c, res) for c in self.containers())
            init = max(
                (amount(c, res) for c in self.spec.get("initContainers") or []),
                default=0,
            )
            if max(main, init):
                out[res] = max(main, init)
        return out


WORKLOAD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def _dig(obj: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def pod_templates(docs: Iterable[Doc]) -> list[PodTemplate]:
    out = []
    for d in docs:
        if d.kind == "Pod":
            out.append(
                PodTemplate(
                    d, f"Pod {d.namespace}/{d.name}", d.namespace, d.labels(), d.spec
                )
            )
        elif d.kind in WORKLOAD_TEMPLATE_PATHS:
            tmpl = _dig(d.obj, WORKLOAD_TEMPLATE_PATHS[d.kind])
            if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
                labels = dict((tmpl.get("metadata") or {}).get("labels") or {})
                out.append(
                    PodTemplate(
                        d,
                        f"{d.kind} {d.namespace}/{d.name}",
                        d.namespace,
                        labels,
                        tmpl["spec"],
                    )
                )
        elif d.kind == "HelmChart" and d.spec.get("chart") == "jupyterhub":
            out.extend(jupyterhub_profiles(d))
    return out


def chart_values(d: Doc) -> dict[str, Any]:
    text = d.spec.get("valuesContent")
    if not text:
        return {}
    values = yaml.safe_load(text)
    return values if isinstance(values, dict) else {}


def jupyterhub_profiles(d: Doc) -> list[PodTemplate]:
    """The user pods KubeSpawner would create for each profile of the chart's values."""
    single = chart_values(d).get("singleuser") or {}
    base_selector = single.get("nodeSelector") or {}
    base_limits = (single.get("extraResource") or {}).get("limits") or {}
    out = []
    for p in single.get("profileList") or []:
        o = p.get("kubespawner_override") or {}
        limits = {**base_limits, **(o.get("extra_resource_limits") or {})}
        spec: dict[str, Any] = {
            "nodeSelector": {**base_selector, **(o.get("node_selector") or {})},
            "containers": [{"name": "notebook", "resources": {"limits": limits}}],
            **(single.get("extraPodConfig") or {}),
            **(o.get("extra_pod_config") or {}),
        }
        if o.get("priority_class_name"):
            spec["priorityClassName"] = o["priority_class_name"]
        ns = d.spec.get("targetNamespace") or d.namespace
        out.append(
            PodTemplate(d, f"JupyterHub profile {p.get('slug', '?')}", ns, {}, spec)
        )
    return out


# --------------------------------------------------------------------------- node matching


def _expr_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
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


def _discovered(key: str) -> bool:
    return key.startswith(DISCOVERED_LABEL_PREFIXES)


def _tolerates(
    tolerations: list[Mapping[str, Any]], taint: tuple[str, str, str]
) -> bool:
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


@dataclass
class Tree:
    docs: list[Doc]
    inventory: Inventory
    kubernetes_version: str
    nodes: list[Node] = field(init=False)
    pods: list[PodTemplate] = field(init=False)

    def __post_init__(self) -> None:
        self.nodes = cluster_nodes(self.inventory)
        self.pods = pod_templates(self.docs)

    def of_kind(self, kind: str, group: str | None = None) -> list[Doc]:
        return [
            d
            for d in self.docs
            if d.kind == kind and (group is None or d.group == group)
        ]

    def names(self, kind: str, namespace: str | None = None) -> set[str]:
        return {
            d.name
            for d in self.of_kind(kind)
            if namespace is None or d.namespace == namespace
        }

    def known_label_keys(self) -> set[str]:
        return {k for n in self.nodes for k in n.labels}

    def runtime_class_selector(self, name: str) -> dict[str, str]:
        for d in self.of_kind("RuntimeClass"):
            if d.name == name:
                return dict((d.obj.get("scheduling") or {}).get("nodeSelector") or {})
        return {}

    def candidate_nodes(self, pod: Mapping[str, Any]) -> list[Node]:
        """Inventory nodes the scheduler could put this pod on (labels, required node
        affinity, RuntimeClass scheduling, taints). Requirements on discovered labels
        are unknown until the cluster runs; they are taken as satisfiable."""
        selector = dict(pod.get("nodeSelector") or {})
        if pod.get("runtimeClassName"):
            selector.update(self.runtime_class_selector(str(pod["runtimeClassName"])))
        terms = (
            _dig(
                pod,
                (
                    "affinity",
                    "nodeAffinity",
                    "requiredDuringSchedulingIgnoredDuringExecution",
                    "nodeSelectorTerms",
                ),
            )
            or []
        )
        tolerations = list(pod.get("tolerations") or [])
        out = []
        for node in self.nodes:
            if any(
                not _discovered(k) and node.labels.get(k) != str(v)
                for k, v in selector.items()
            ):
                continue
            if terms and not any(
                all(
                    _discovered(e.get("key", "")) or _expr_matches(e, node.labels)
                    for e in t.get("matchExpressions") or []
                )
                for t in terms
            ):
                continue
            if node.name != pod.get("nodeName", node.name):
                continue
            if not all(
                _tolerates(tolerations, taint)
                for taint in node.taints
                if taint[2] != "PreferNoSchedule"
            ):
                continue
            out.append(node)
        return out


def selector_label_uses(pod: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, where) for every node label a pod spec selects on."""
    for k in pod.get("nodeSelector") or {}:
        yield k, "nodeSelector"
    na = _dig(pod, ("affinity", "nodeAffinity")) or {}
    for t in (
        _dig(
            na, ("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
        )
        or []
    ):
        for e in t.get("matchExpressions") or []:
            yield e.get("key", ""), "required node affinity"
    for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        for e in _dig(p, ("preference", "matchExpressions")) or []:
            yield e.get("key", ""), "preferred node affinity"
    for c in pod.get("topologySpreadConstraints") or []:
        yield c.get("topologyKey", ""), "topologySpreadConstraints"


def _walk_selectors(
    values: Any, path: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every nodeSelector / node_selector / nodeLabels mapping inside chart values."""
    if isinstance(values, dict):
        for k, v in values.items():
            here = f"{path}.{k}" if path else str(k)
            if k in ("nodeSelector", "node_selector") and isinstance(v, dict):
                yield here, v
            else:
                yield from _walk_selectors(v, here)
    elif isinstance(values, list):
        for i, v in enumerate(values):
            yield from _walk_selectors(v, f"{path}[{i}]")


def _walk_keys(
    values: Any, keys: set[str], path: str = ""
) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every occurrence of one of `keys` inside chart values."""
    if isinstance(values, dict):
        for k, v in values.items():
            here = f"{path}.{k}" if path else str(k)
            if k in keys:
                yield here, k, v
            else:
                yield from _walk_keys(v, keys, here)
    elif isinstance(values, list):
        for i, v in enumerate(values):
            yield from _walk_keys(v, keys, f"{path}[{i}]")


# --------------------------------------------------------------------------- checks

Check = Callable[[Tree], list[Problem]]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn

    return register


@check("schema")
def check_schema(t: Tree) -> list[Problem]:
    """Built-in kinds against kubernetes-validate --strict; CRD kinds against CRD_RULES."""
    sv = schema_validator(t.kubernetes_version)
    out = []
    for d in t.docs:
        if not d.api_version or not d.kind:
            out.append(Problem(str(d), "schema", "document has no apiVersion or kind"))
            continue
        if sv.has_schema(d.api_version, d.kind):
            out.extend(Problem(str(d), "schema", e) for e in sv.errors(d.obj))
            continue
        rule = CRD_RULES.get((d.api_version, d.kind))
        if rule is None:
            out.append(
                Problem(
                    str(d),
                    "schema",
                    f"{d.api_version} {d.kind} has no Kubernetes {sv.version} schema and no "
                    "CRD rule in tests/k8s/crd_rules.py",
                )
            )
            continue
        out.extend(Problem(str(d), "crd", m) for m in crd_problems(d.obj, rule))
    return out


def crd_problems(obj: Mapping[str, Any], rule: CrdRule) -> list[str]:
    out = []
    meta = obj.get("metadata") or {}
    if not meta.get("name"):
        out.append("metadata.name is required")
    if rule.namespaced and not meta.get("namespace"):
        out.append(f"{rule.kind} is namespaced: metadata.namespace is required")
    if not rule.namespaced and meta.get("namespace"):
        out.append(f"{rule.kind} is cluster-scoped: remove metadata.namespace")
    for key in sorted(set(obj) - rule.top_level):
        out.append(
            f"unknown top-level key {key!r} (allowed: {', '.join(sorted(rule.top_level))})"
        )
    spec = obj.get("spec")
    if rule.spec_keys is not None:
        if spec is None and rule.required:
            out.append("spec is required")
        elif spec is not None and not isinstance(spec, dict):
            out.append("spec must be a mapping")
        elif isinstance(spec, dict):
            for key in sorted(set(spec) - rule.spec_keys):
                out.append(
                    f"unknown key spec.{key} (allowed: {', '.join(sorted(rule.spec_keys))})"
                )
    for path, kind in rule.required.items():
        value = _dig(obj, path.split("."))
        if value is None:
            out.append(f"{path} is required")
        elif not isinstance(value, kind):
            names = kind if isinstance(kind, tuple) else (kind,)
            out.append(f"{path} must be a {' or '.join(k.__name__ for k in names)}")
    if rule.extra is not None:
        out.extend(rule.extra(obj))
    return out


@check("unique")
def check_unique(t: Tree) -> list[Problem]:
    seen: dict[tuple[str, str, str, str], Doc] = {}
    out = []
    for d in t.docs:
        key = (d.group, d.kind, d.namespace, d.name)
        if key in seen:
            out.append(
                Problem(
                    str(d),
                    "unique",
                    f"same object as {seen[key]}: k3s would apply both, the last one wins",
                )
            )
        else:
            seen[key] = d
    return out


@check("namespaces")
def check_namespaces(t: Tree) -> list[Problem]:
    declared = t.names("Namespace") | BUILTIN_NAMESPACES
    out = []
    for d in t.docs:
        if d.namespace and d.namespace not in declared:
            out.append(
                Problem(
                    str(d),
                    "namespaces",
                    f"namespace {d.namespace!r} is not declared under k8s/",
                )
            )
        if d.kind == "HelmChart":
            target = d.spec.get("targetNamespace")
            if target and target not in declared and not d.spec.get("createNamespace"):
                out.append(
                    Problem(
                        str(d),
                        "namespaces",
                        f"targetNamespace {target!r} is not declared and createNamespace is off",
                    )
                )
    return out


@check("node-labels")
def check_node_labels(t: Tree) -> list[Problem]:
    """Every label a pod, chart value or Kueue flavor selects on is carried by some
    inventory node (or is a discovered label), and the selection matches some node."""
    known = t.known_label_keys()
    out = []

    def unknown(key: str) -> bool:
        return key not in known and not _discovered(key)

    for pod in t.pods:
        for key, where in selector_label_uses(pod.spec):
            if unknown(key):
                out.append(
                    Problem(
                        str(pod.doc),
                        "node-labels",
                        f"{pod.owner}: {where} uses label {key!r}, which no inventory node carries",
                    )
                )
        if not t.candidate_nodes(pod.spec):
            out.append(
                Problem(
                    str(pod.doc),
                    "node-labels",
                    f"{pod.owner}: no inventory node matches its node selection",
                )
            )
    for d in t.of_kind("HelmChart"):
        for path, sel in _walk_selectors(chart_values(d)):
            for key in sel:
                if unknown(key):
                    out.append(
                        Problem(
                            str(d),
                            "node-labels",
                            f"values {path} uses label {key!r}, which no inventory node carries",
                        )
                    )
            if not t.candidate_nodes(
                {"nodeSelector": sel, "tolerations": [{"operator": "Exists"}]}
            ):
                out.append(
                    Problem(
                        str(d),
                        "node-labels",
                        f"values {path} matches no inventory node",
                    )
                )
    for d in t.of_kind("ResourceFlavor"):
        sel = d.spec.get("nodeLabels") or {}
        for key in sel:
            if unknown(key):
                out.append(
                    Problem(
                        str(d),
                        "node-labels",
                        f"nodeLabels uses {key!r}, which no inventory node carries",
                    )
                )
        if not t.candidate_nodes(
            {"nodeSelector": sel, "tolerations": [{"operator": "Exists"}]}
        ):
            out.append(
                Problem(str(d), "node-labels", "nodeLabels match no inventory node")
            )
    for d in t.of_kind("RuntimeClass"):
        for key in (d.obj.get("scheduling") or {}).get("nodeSelector") or {}:
            if unknown(key):
                out.append(
                    Problem(
                        str(d),
                        "node-labels",
                        f"scheduling.nodeSelector uses {key!r}, which no inventory node carries",
                    )
                )
    return out


@check("gpu-fit")
def check_gpu_fit(t: Tree) -> list[Problem]:
    """A pod's GPU request fits every node it can land on; NVIDIA pods use the nvidia
    runtime; extended-resource requests equal limits."""
    out = []
    for pod in t.pods:
        want = pod.gpu_request()
        for c in pod.containers():
            r = c.get("resources") or {}
            req, lim = r.get("requests") or {}, r.get("limits") or {}
            for res in GPU_RESOURCES:
                if res in req and res in lim and int(req[res]) != int(lim[res]):
                    out.append(
                        Problem(
                            str(pod.doc),
                            "gpu-fit",
                            f"{pod.owner}: container {c.get('name')}: {res} request {req[res]} != limit {lim[res]} (extended resources cannot be overcommitted)",
                        )
                    )
                if res in req and res not in lim:
                    out.append(
                        Problem(
                            str(pod.doc),
                            "gpu-fit",
                            f"{pod.owner}: container {c.get('name')}: {res} needs a limit (extended resources are set in limits)",
                        )
                    )
        for c in pod.containers():
            for e in c.get("env") or []:
                if (
                    e.get("name") in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
                    and not want
                ):
                    out.append(
                        Problem(
                            str(pod.doc),
                            "gpu-fit",
                            f"{pod.owner}: sets {e['name']} without requesting a GPU: that "
                            "takes GPUs behind the device plugin's back",
                        )
                    )
        if not want:
            continue
        candidates = t.candidate_nodes(pod.spec)
        # Every node the pod may land on must hold the request: a GPU pod whose labels
        # also admit a smaller node is one inventory change away from never starting.
        unfit = [
            n
            for n in candidates
            if not all(n.gpus.get(r, 0) >= k for r, k in want.items())
        ]
        if unfit:
            have = ", ".join(f"{n.name}: {dict(n.gpus) or 'no GPUs'}" for n in unfit)
            out.append(
                Problem(
                    str(pod.doc),
                    "gpu-fit",
                    f"{pod.owner}: asks for {want} but nodes it can land on have {have}",
                )
            )
        if "nvidia.com/gpu" in want and pod.spec.get("runtimeClassName") != "nvidia":
            out.append(
                Problem(
                    str(pod.doc),
                    "gpu-fit",
                    f"{pod.owner}: asks for nvidia.com/gpu without runtimeClassName: nvidia (the container would get no driver libraries)",
                )
            )
        if "amd.com/gpu" in want and pod.spec.get("runtimeClassName") == "nvidia":
            out.append(
                Problem(
                    str(pod.doc),
                    "gpu-fit",
                    f"{pod.owner}: an amd.com/gpu pod must not use the nvidia runtime",
                )
            )
    return out


@check("gpu-strategy")
def check_gpu_strategy(t: Tree) -> list[Problem]:
    """A GPU Deployment rolls with Recreate: a surge pod would need a GPU its
    predecessor still holds."""
    out = []
    for pod in t.pods:
        if pod.doc.kind != "Deployment" or not pod.gpu_request():
            continue
        strategy = (pod.doc.spec.get("strategy") or {}).get("type", "RollingUpdate")
        if strategy != "Recreate":
            out.append(
                Problem(
                    str(pod.doc),
                    "gpu-strategy",
                    f"GPU Deployment uses {strategy}; use strategy.type: Recreate",
                )
            )
    return out


def _priority_values(t: Tree) -> tuple[dict[str, int], int]:
    values = {d.name: int(d.obj.get("value", 0)) for d in t.of_kind("PriorityClass")}
    default = next(
        (
            int(d.obj.get("value", 0))
            for d in t.of_kind("PriorityClass")
            if d.obj.get("globalDefault")
        ),
        0,
    )
    return values, default


@check("gpu-budget")
def check_gpu_budget(t: Tree) -> list[Problem]:
    """The always-on GPU services above the default priority that can only run on one
    node fit that node's GPUs together (lower ones may wait for a free GPU)."""
    values, default = _priority_values(t)
    demand: dict[str, list[tuple[str, int, str]]] = {}
    for pod in t.pods:
        if pod.doc.kind not in ("Deployment", "StatefulSet"):
            continue
        prio = values.get(str(pod.spec.get("priorityClassName", "")), default)
        if prio <= default:
            continue
        replicas = int(pod.doc.spec.get("replicas", 1))
        candidates = t.candidate_nodes(pod.spec)
        for res, k in pod.gpu_request().items():
            if len(candidates) == 1:
                demand.setdefault(candidates[0].name, []).append(
                    (res, k * replicas, pod.owner)
                )
    out = []
    nodes = {n.name: n for n in t.nodes}
    for node, items in sorted(demand.items()):
        for res in GPU_RESOURCES:
            total = sum(k for r, k, _ in items if r == res)
            if total > nodes[node].gpus.get(res, 0):
                who = ", ".join(f"{o} ({k})" for r, k, o in items if r == res)
                out.append(
                    Problem(
                        node,
                        "gpu-budget",
                        f"{res}: {total} wanted above the default priority by {who}, node has {nodes[node].gpus.get(res, 0)}",
                    )
                )
    return out


@check("references")
def check_references(t: Tree) -> list[Problem]:
    """PriorityClass, RuntimeClass, PVC and ConfigMap references resolve inside the tree."""
    priorities = t.names("PriorityClass") | BUILTIN_PRIORITY_CLASSES
    runtimes = t.names("RuntimeClass")
    out = []
    for pod in t.pods:
        where = str(pod.doc)
        pc = pod.spec.get("priorityClassName")
        if pc and pc not in priorities:
            out.append(
                Problem(
                    where,
                    "references",
                    f"{pod.owner}: PriorityClass {pc!r} does not exist",
                )
            )
        rc = pod.spec.get("runtimeClassName")
        if rc and rc not in runtimes:
            out.append(
                Problem(
                    where,
                    "references",
                    f"{pod.owner}: RuntimeClass {rc!r} does not exist",
                )
            )
        if pod.doc.kind == "HelmChart":
            continue  # chart-made pods reference chart-made objects
        for v in pod.spec.get("volumes") or []:
            claim = _dig(v, ("persistentVolumeClaim", "claimName"))
            if claim and claim not in t.names("PersistentVolumeClaim", pod.namespace):
                out.append(
                    Problem(
                        where,
                        "references",
                        f"{pod.owner}: volume {v.get('name')} uses PVC {claim!r}, not declared in {pod.namespace}",
                    )
                )
            cm = _dig(v, ("configMap", "name"))
            if (
                cm
                and cm not in t.names("ConfigMap", pod.namespace)
                and not _dig(v, ("configMap", "optional"))
            ):
                out.append(
                    Problem(
                        where,
                        "references",
                        f"{pod.owner}: volume {v.get('name')} uses ConfigMap {cm!r}, not declared in {pod.namespace}",
                    )
                )
    for d in t.of_kind("HelmChart"):
        refs = {"priorityClassName": priorities, "runtimeClassName": runtimes}
        for path, key, value in _walk_keys(chart_values(d), set(refs)):
            if isinstance(value, str) and value and value not in refs[key]:
                kind = key[0].upper() + key[1 : -len("ClassName")]
                out.append(
                    Problem(
                        str(d),
                        "references",
                        f"values {path}: {kind}Class {value!r} does not exist",
                    )
                )
    for d in t.of_kind("HorizontalPodAutoscaler") + t.of_kind("PodDisruptionBudget"):
        if d.kind == "HorizontalPodAutoscaler":
            ref = d.spec.get("scaleTargetRef") or {}
            if ref.get("name") not in t.names(str(ref.get("kind")), d.namespace):
                out.append(
                    Problem(
                        str(d),
                        "references",
                        f"scaleTargetRef {ref.get('kind')} {ref.get('name')!r} does not exist",
                    )
                )
            target = next(
                (
                    p
                    for p in t.pods
                    if p.doc.kind == ref.get("kind")
                    and p.doc.name == ref.get("name")
                    and p.namespace == d.namespace
                ),
                None,
            )
            if target and "replicas" in target.doc.spec:
                out.append(
                    Problem(
                        str(d),
                        "references",
                        f"{target.owner} sets spec.replicas: k3s re-applies it and undoes the HPA's scaling",
                    )
                )
        else:
            sel = (d.spec.get("selector") or {}).get("matchLabels") or {}
            if not any(
                p.namespace == d.namespace and sel.items() <= dict(p.labels).items()
                for p in t.pods
            ):
                out.append(
                    Problem(
                        str(d),
                        "references",
                        f"selector {sel} matches no pod template in {d.namespace}",
                    )
                )
    return out


@check("storage")
def check_storage(t: Tree) -> list[Problem]:
    """Every PVC has a StorageClass or a PV that fits it; NFS servers and exports are
    the inventory's."""
    classes = t.names("StorageClass") | BUILTIN_STORAGE_CLASSES
    pvs = {d.name: d for d in t.of_kind("PersistentVolume")}
    out = []
    for d in t.of_kind("PersistentVolumeClaim"):
        sc = d.spec.get("storageClassName")
        vol = d.spec.get("volumeName")
        if sc is None and not vol:
            out.append(
                Problem(
                    str(d),
                    "storage",
                    "no storageClassName: the claim would silently take the cluster's default class",
                )
            )
        elif sc and sc not in classes:
            out.append(
                Problem(str(d), "storage", f"StorageClass {sc!r} does not exist")
            )
        if vol:
            pv = pvs.get(vol)
            if pv is None:
                out.append(
                    Problem(
                        str(d),
                        "storage",
                        f"volumeName {vol!r}: no such PersistentVolume",
                    )
                )
                continue
            if pv.spec.get("storageClassName", "") != (sc or ""):
                out.append(
                    Problem(
                        str(d),
                        "storage",
                        f"PV {vol} has class {pv.spec.get('storageClassName')!r}, the claim {sc!r}: they never bind",
                    )
                )
            if not set(d.spec.get("accessModes") or []) <= set(
                pv.spec.get("accessModes") or []
            ):
                out.append(
                    Problem(
                        str(d),
                        "storage",
                        f"access modes {d.spec.get('accessModes')} not offered by PV {vol}",
                    )
                )
            ref = pv.spec.get("claimRef") or {}
            if ref and (ref.get("namespace"), ref.get("name")) != (d.namespace, d.name):
                out.append(
                    Problem(
                        str(d),
                        "storage",
                        f"PV {vol} is reserved for {ref.get('namespace')}/{ref.get('name')}",
                    )
                )
    for d in t.of_kind("PersistentVolume"):
        sc = d.spec.get("storageClassName")
        if sc and sc not in classes:
            out.append(
                Problem(str(d), "storage", f"StorageClass {sc!r} does not exist")
            )
    for d in t.of_kind("HelmChart"):
        for path, _, value in _walk_keys(
            chart_values(d), {"storageClass", "storageClassName"}
        ):
            if isinstance(value, str) and value and value not in classes:
                out.append(
                    Problem(
                        str(d),
                        "storage",
                        f"values {path}: StorageClass {value!r} does not exist",
                    )
                )
    exports = {(s.address, e) for s in t.inventory.storage.values() for e in s.exports}
    for d in t.of_kind("PersistentVolume") + t.of_kind("StorageClass"):
        server = share = None
        if d.kind == "StorageClass" and d.obj.get("provisioner") == "nfs.csi.k8s.io":
            params = d.obj.get("parameters") or {}
            server, share = params.get("server"), params.get("share")
        elif d.kind == "PersistentVolume":
            if "nfs" in d.spec:
                server, share = d.spec["nfs"].get("server"), d.spec["nfs"].get("path")
            elif _dig(d.spec, ("csi", "driver")) == "nfs.csi.k8s.io":
                attrs = _dig(d.spec, ("csi", "volumeAttributes")) or {}
                server, share = attrs.get("server"), attrs.get("share")
        if server is None:
            continue
        if not any(
            server == a and (share == e or str(share).startswith(e.rstrip("/") + "/"))
            for a, e in exports
        ):
            out.append(
                Problem(
                    str(d),
                    "storage",
                    f"NFS {server}:{share} is not an export of an inventory storage host",
                )
            )
    for pod in t.pods:
        for v in pod.spec.get("volumes") or []:
            if "nfs" in v:
                out.append(
                    Problem(
                        str(pod.doc),
                        "storage",
                        f"{pod.owner}: inline nfs volume {v.get('name')}; use a PV/PVC of the nfs-models or nfs-shared class",
                    )
                )
            pinned = "kubernetes.io/hostname" in (pod.spec.get("nodeSelector") or {})
            if "hostPath" in v and pod.doc.kind != "DaemonSet" and not pinned:
                out.append(
                    Problem(
                        str(pod.doc),
                        "storage",
                        f"{pod.owner}: hostPath volume {v.get('name')} ties data to a node; use a PVC",
                    )
                )
    return out


@check("workloads")
def check_workloads(t: Tree) -> list[Problem]:
    """Long-running app workloads are complete: probes, cpu/memory requests and a memory
    limit, a priority class, and node selection by label."""
    out = []
    for pod in t.pods:
        if pod.doc.kind not in ("Deployment", "StatefulSet"):
            continue
        if not pod.spec.get("priorityClassName"):
            out.append(
                Problem(str(pod.doc), "workloads", f"{pod.owner}: no priorityClassName")
            )
        if not pod.spec.get("nodeSelector") and not _dig(
            pod.spec, ("affinity", "nodeAffinity")
        ):
            out.append(
                Problem(
                    str(pod.doc),
                    "workloads",
                    f"{pod.owner}: no node selection; pick nodes by inventory labels",
                )
            )
        for c in pod.containers():
            name = f"{pod.owner}: container {c.get('name')}"
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    out.append(
                        Problem(str(pod.doc), "workloads", f"{name} has no {probe}")
                    )
            r = c.get("resources") or {}
            missing = [
                k for k in ("cpu", "memory") if k not in (r.get("requests") or {})
            ]
            if missing:
                out.append(
                    Problem(
                        str(pod.doc),
                        "workloads",
                        f"{name} requests no {' or '.join(missing)}",
                    )
                )
            if "memory" not in (r.get("limits") or {}):
                out.append(
                    Problem(str(pod.doc), "workloads", f"{name} has no memory limit")
                )
    return out


@check("services")
def check_services(t: Tree) -> list[Problem]:
    """Every Service selects some pod template of its namespace, and its named target
    ports exist on that template."""
    out = []
    for d in t.of_kind("Service"):
        sel = d.spec.get("selector")
        if not sel:
            continue
        matches = [
            p
            for p in t.pods
            if p.namespace == d.namespace and sel.items() <= dict(p.labels).items()
        ]
        if not matches:
            out.append(
                Problem(
                    str(d),
                    "services",
                    f"selector {sel} matches no pod template in {d.namespace}",
                )
            )
            continue
        port_names = {
            p.get("name")
            for m in matches
            for c in m.containers()
            for p in c.get("ports") or []
        }
        for port in d.spec.get("ports") or []:
            target = port.get("targetPort")
            if isinstance(target, str) and target not in port_names:
                out.append(
                    Problem(
                        str(d),
                        "services",
                        f"targetPort {target!r} is not a named container port of the selected pods",
                    )
                )
    return out


EXTENDED = re.compile(r"^(requests\.|limits\.)?([a-z0-9.-]+\.[a-z]+/[A-Za-z0-9._-]+)$")


@check("quotas")
def check_quotas(t: Tree) -> list[Problem]:
    """Extended resources are quota'd only as requests.<resource>."""
    out = []
    for d in t.of_kind("ResourceQuota"):
        for key in d.spec.get("hard") or {}:
            m = EXTENDED.match(key)
            if (
                m
                and "/" in key
                and not key.startswith("requests.")
                and not key.startswith(("count/",))
                # per-class storage items: <class>.storageclass.storage.k8s.io/requests.storage
                and ".storageclass.storage.k8s.io/" not in key
            ):
                out.append(
                    Problem(
                        str(d),
                        "quotas",
                        f"{key!r}: extended resources take only 'requests.{m.group(2)}'",
                    )
                )
    return out


_SUFFIX = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def quantity(value: Any) -> float:
    """A Kubernetes quantity ("500m", "16Gi", 2) as a number."""
    m = _QUANTITY.match(str(value).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def _peak_pods(t: Tree, pod: PodTemplate) -> int:
    """Most pods of this template alive at once: replicas (or the HPA's maximum), plus
    the rolling update's surge."""
    spec = pod.doc.spec
    if pod.doc.kind not in ("Deployment", "StatefulSet"):
        return int(spec.get("parallelism", 1)) if pod.doc.kind == "Job" else 1
    replicas = int(spec.get("replicas", 1))
    for h in t.of_kind("HorizontalPodAutoscaler"):
        ref = h.spec.get("scaleTargetRef") or {}
        if h.namespace == pod.namespace and ref.get("name") == pod.doc.name:
            replicas = int(h.spec.get("maxReplicas", replicas))
    strategy = spec.get("strategy") or {}
    if (
        pod.doc.kind == "Deployment"
        and strategy.get("type", "RollingUpdate") == "RollingUpdate"
    ):
        surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
        replicas += (
            -(-replicas * int(surge[:-1]) // 100)
            if isinstance(surge, str)
            else int(surge)
        )
    return replicas


@check("quota-fit")
def check_quota_fit(t: Tree) -> list[Problem]:
    """The namespace's own workloads, at their peak (HPA maximum, rolling-update surge),
    fit its ResourceQuota: a quota that blocks its apps fails only at 3 a.m."""
    out = []
    for q in t.of_kind("ResourceQuota"):
        hard = q.spec.get("hard") or {}
        used: dict[str, float] = {}
        for pod in t.pods:
            if pod.namespace != q.namespace or pod.doc.kind == "HelmChart":
                continue
            n = _peak_pods(t, pod)
            for c in pod.containers():
                r = c.get("resources") or {}
                for section, prefix in (
                    ("requests", "requests."),
                    ("limits", "limits."),
                ):
                    for res, v in (r.get(section) or {}).items():
                        key = prefix + res
                        used[key] = used.get(key, 0.0) + n * quantity(v)
                # extended resources: a limit alone is also the request
                for res, v in (r.get("limits") or {}).items():
                    if "/" in res and res not in (r.get("requests") or {}):
                        key = "requests." + res
                        used[key] = used.get(key, 0.0) + n * quantity(v)
        for key, limit in hard.items():
            if key in used and used[key] > quantity(limit) + 1e-9:
                out.append(
                    Problem(
                        str(q),
                        "quota-fit",
                        f"{key}: the namespace's workloads need {used[key]:g} at their peak, "
                        f"the quota allows {quantity(limit):g}",
                    )
                )
    return out


@check("no-secrets")
def check_no_secrets(t: Tree) -> list[Problem]:
    """No Secret objects and no secret-looking literal env values under k8s/: Secrets
    come from agenix (docs/secrets.md)."""
    out = []
    for d in t.docs:
        if d.kind == "Secret":
            out.append(
                Problem(
                    str(d),
                    "no-secrets",
                    "Secret objects never live under k8s/; deliver them with agenix",
                )
            )
    for pod in t.pods:
        for c in pod.containers() + list(pod.spec.get("initContainers") or []):
            for e in c.get("env") or []:
                if (
                    "value" in e
                    and SECRET_NAME.search(str(e.get("name", "")))
                    and e["value"] not in ("", "true", "false")
                ):
                    out.append(
                        Problem(
                            str(pod.doc),
                            "no-secrets",
                            f"{pod.owner}: env {e['name']} has a literal value; use secretKeyRef",
                        )
                    )
    return out


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
                out.append(
                    Problem(str(d), "helm-charts", "an oci:// chart takes no repo")
                )
        elif not (isinstance(repo, str) and repo.startswith("https://")):
            out.append(
                Problem(
                    str(d),
                    "helm-charts",
                    f"repo {repo!r} must be an https:// chart repository",
                )
            )
        try:
            values = yaml.safe_load(d.spec.get("valuesContent") or "{}")
        except yaml.YAMLError as exc:
            out.append(
                Problem(str(d), "helm-charts", f"valuesContent is not YAML: {exc}")
            )
            continue
        if not isinstance(values, dict):
            out.append(
                Problem(str(d), "helm-charts", "valuesContent must be a mapping")
            )
    return out


@check("kueue")
def check_kueue(t: Tree) -> list[Problem]:
    """LocalQueue -> ClusterQueue -> ResourceFlavor chains resolve, GPU quotas fit the
    flavor's nodes, and queued Jobs start suspended in a namespace with that queue."""
    out = []
    cqs = {d.name: d for d in t.of_kind("ClusterQueue")}
    flavors = {d.name: d for d in t.of_kind("ResourceFlavor")}
    for d in t.of_kind("LocalQueue"):
        if d.spec.get("clusterQueue") not in cqs:
            out.append(
                Problem(
                    str(d),
                    "kueue",
                    f"ClusterQueue {d.spec.get('clusterQueue')!r} does not exist",
                )
            )
    for d in cqs.values():
        for g in d.spec.get("resourceGroups") or []:
            covered = set(g.get("coveredResources") or [])
            for f in g.get("flavors") or []:
                fl = flavors.get(f.get("name"))
                if fl is None:
                    out.append(
                        Problem(
                            str(d),
                            "kueue",
                            f"ResourceFlavor {f.get('name')!r} does not exist",
                        )
                    )
                    continue
                names = {r.get("name") for r in f.get("resources") or []}
                if names != covered:
                    out.append(
                        Problem(
                            str(d),
                            "kueue",
                            f"flavor {fl.name} quotas {sorted(names)} differ from coveredResources {sorted(covered)}",
                        )
                    )
                nodes = t.candidate_nodes(
                    {
                        "nodeSelector": fl.spec.get("nodeLabels") or {},
                        "tolerations": [{"operator": "Exists"}],
                    }
                )
                for r in f.get("resources") or []:
                    if r.get("name") in GPU_RESOURCES:
                        have = sum(n.gpus.get(r["name"], 0) for n in nodes)
                        if int(r.get("nominalQuota", 0)) > have:
                            out.append(
                                Problem(
                                    str(d),
                                    "kueue",
                                    f"flavor {fl.name}: {r['name']} quota {r.get('nominalQuota')} exceeds the {have} GPUs of its nodes",
                                )
                            )
    for pod in t.pods:
        queue = pod.doc.labels().get("kueue.x-k8s.io/queue-name")
        if pod.doc.kind != "Job" or not queue:
            continue
        if queue not in t.names("LocalQueue", pod.namespace):
            out.append(
                Problem(
                    str(pod.doc),
                    "kueue",
                    f"queue {queue!r} is not a LocalQueue of {pod.namespace}",
                )
            )
        if pod.doc.spec.get("suspend") is not True:
            out.append(
                Problem(
                    str(pod.doc),
                    "kueue",
                    "a queued Job must be created with suspend: true, or it starts before Kueue admits it",
                )
            )
    return out


@check("network")
def check_network(t: Tree) -> list[Problem]:
    """Each app namespace has a default-deny policy; wide ipBlocks exclude the cluster's
    pod and service CIDRs; single-host blocks name inventory addresses."""
    out = []
    inv = t.inventory
    cluster = {
        ipaddress.ip_network(inv.cluster.cluster_cidr),
        ipaddress.ip_network(inv.cluster.service_cidr),
    }
    known_hosts = {s.address for s in inv.storage.values()} | {
        h.address for h in inv.hosts.values()
    }
    for ns in t.of_kind("Namespace"):
        if ns.labels().get("hydra.io/tier") != "apps":
            continue
        denies = [
            d
            for d in t.of_kind("NetworkPolicy")
            if d.namespace == ns.name
            and d.spec.get("podSelector") == {}
            and set(d.spec.get("policyTypes") or []) == {"Ingress", "Egress"}
            and not d.spec.get("ingress")
            and not d.spec.get("egress")
        ]
        if not denies:
            out.append(
                Problem(
                    str(ns),
                    "network",
                    f"app namespace {ns.name} has no default-deny NetworkPolicy",
                )
            )
    for d in t.of_kind("NetworkPolicy"):
        for rule in (d.spec.get("egress") or []) + (d.spec.get("ingress") or []):
            for peer in (rule.get("to") or []) + (rule.get("from") or []):
                block = peer.get("ipBlock")
                if not block:
                    continue
                net = ipaddress.ip_network(block["cidr"], strict=False)
                excepted = {
                    ipaddress.ip_network(e, strict=False)
                    for e in block.get("except") or []
                }
                for c in cluster:
                    if _within(c, net) and not any(_within(c, e) for e in excepted):
                        out.append(
                            Problem(
                                str(d),
                                "network",
                                f"ipBlock {net} includes the cluster range {c} without excepting it: it would bypass the namespace policies",
                            )
                        )
                if (
                    net.num_addresses == 1
                    and str(net.network_address) not in known_hosts
                ):
                    out.append(
                        Problem(
                            str(d),
                            "network",
                            f"ipBlock {net} is not an inventory host or storage address",
                        )
                    )
    return out


def _within(
    a: ipaddress.IPv4Network | ipaddress.IPv6Network,
    b: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> bool:
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


# Ports k3s itself listens on (or flannel/etcd): a ServiceLB LoadBalancer on one of them
# would never get its svclb pods scheduled (hostPort conflict).
K3S_HOST_PORTS = {6443, 10250, 2379, 2380, 8472, 51820, 51821, 5001, 6444, 10010}


@check("k3s-components")
def check_k3s_components(t: Tree) -> list[Problem]:
    """What the manifests need from k3s is not disabled in the inventory: ServiceLB for
    LoadBalancer Services (one owner per node port), metrics-server for resource HPAs,
    local-storage for local-path classes, Traefik for Ingresses."""
    disabled = set(t.inventory.cluster.disable)
    out = []
    taken: dict[tuple[int, str], str] = {}
    for d in t.of_kind("Service"):
        if d.spec.get("type") != "LoadBalancer":
            continue
        if "servicelb" in disabled:
            out.append(
                Problem(
                    str(d),
                    "k3s-components",
                    "LoadBalancer Service but the inventory disables servicelb: it stays <pending>",
                )
            )
        for port in d.spec.get("ports") or []:
            key = (int(port.get("port", 0)), str(port.get("protocol", "TCP")))
            if key[0] in K3S_HOST_PORTS:
                out.append(
                    Problem(
                        str(d),
                        "k3s-components",
                        f"port {key[0]} is a k3s host port; ServiceLB cannot bind it",
                    )
                )
            elif key in taken:
                out.append(
                    Problem(
                        str(d),
                        "k3s-components",
                        f"port {key[0]}/{key[1]} is already published by {taken[key]} (ServiceLB binds it on every node)",
                    )
                )
            else:
                taken[key] = f"Service {d.namespace}/{d.name}"
    # HelmCharts that publish LoadBalancer ports: JupyterHub's proxy on 80/443
    for d in t.of_kind("HelmChart"):
        if d.spec.get("chart") == "jupyterhub":
            proxy = chart_values(d).get("proxy") or {}
            if (proxy.get("service") or {}).get(
                "type", "LoadBalancer"
            ) == "LoadBalancer":
                https = (proxy.get("https") or {}).get("enabled", False)
                for port in (80, 443) if https else (80,):
                    key = (port, "TCP")
                    if key in taken:
                        out.append(
                            Problem(
                                str(d),
                                "k3s-components",
                                f"JupyterHub's proxy publishes {port}/TCP, already published by {taken[key]}",
                            )
                        )
                    taken[key] = "JupyterHub proxy-public"
    if "metrics-server" in disabled:
        for d in t.of_kind("HorizontalPodAutoscaler"):
            if any(m.get("type") == "Resource" for m in d.spec.get("metrics") or []):
                out.append(
                    Problem(
                        str(d),
                        "k3s-components",
                        "resource-metric HPA but the inventory disables metrics-server",
                    )
                )
    if "local-storage" in disabled:
        for d in t.of_kind("StorageClass"):
            if d.obj.get("provisioner") == "rancher.io/local-path":
                out.append(
                    Problem(
                        str(d),
                        "k3s-components",
                        "rancher.io/local-path class but the inventory disables local-storage",
                    )
                )
    if "traefik" in disabled:
        for d in t.of_kind("Ingress"):
            out.append(
                Problem(
                    str(d),
                    "k3s-components",
                    "Ingress but the inventory disables traefik and no other ingress controller is deployed",
                )
            )
    return out


@check("inventory-values")
def check_inventory_values(t: Tree) -> list[Problem]:
    """Values that must equal the inventory's: HSA_OVERRIDE_GFX_VERSION is the
    rocm_gfx_version of every node the pod can land on."""
    out = []
    for pod in t.pods:
        for c in pod.containers():
            for e in c.get("env") or []:
                if e.get("name") != "HSA_OVERRIDE_GFX_VERSION":
                    continue
                for n in t.candidate_nodes(pod.spec):
                    if n.rocm_gfx_version != e.get("value"):
                        out.append(
                            Problem(
                                str(pod.doc),
                                "inventory-values",
                                f"{pod.owner}: HSA_OVERRIDE_GFX_VERSION={e.get('value')} but {n.name} has rocm_gfx_version {n.rocm_gfx_version!r}",
                            )
                        )
    return out


def referenced_secrets(t: Tree) -> dict[str, set[str]]:
    """Secret name -> the objects that need it (namespace/secret)."""
    out: dict[str, set[str]] = {}
    for pod in t.pods:
        names = set()
        for v in pod.spec.get("volumes") or []:
            if _dig(v, ("secret", "secretName")):
                names.add(v["secret"]["secretName"])
        for c in pod.containers():
            for e in c.get("envFrom") or []:
                if _dig(e, ("secretRef", "name")):
                    names.add(e["secretRef"]["name"])
            for e in c.get("env") or []:
                ref = _dig(e, ("valueFrom", "secretKeyRef", "name"))
                if ref:
                    names.add(ref)
        for n in names:
            out.setdefault(f"{pod.namespace}/{n}", set()).add(pod.owner)
    return out


def run_all(t: Tree, only: Iterable[str] | None = None) -> list[Problem]:
    names = list(only) if only is not None else list(CHECKS)
    return [p for name in names for p in CHECKS[name](t)]


def main(argv: list[str] | None = None) -> int:
    """`python tests/k8s/manifest_checks.py [DIR] [--inventory FILE] [--check NAME]…`:
    every problem on one line; exit 1 when there are problems, 2 on bad input."""
    import argparse
    import sys

    from hydradeploy.errors import UserError
    from hydradeploy.inventory import load_inventory
    from hydradeploy.versions import KUBERNETES_VERSION

    repo = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(prog="manifest_checks", description=__doc__)
    ap.add_argument("dir", nargs="?", type=Path, default=repo / "k8s")
    ap.add_argument("--inventory", type=Path, default=repo / "hosts" / "inventory.toml")
    ap.add_argument("--check", action="append", choices=sorted(CHECKS))
    args = ap.parse_args(argv)
    try:
        inv = load_inventory(args.inventory)
        docs = load_documents(args.dir)
    except (UserError, ManifestError) as exc:
        print(f"manifest_checks: error: {exc}", file=sys.stderr)
        return 2
    problems = run_all(Tree(docs, inv, KUBERNETES_VERSION), args.check)
    for p in problems:
        print(p)
    print(
        f"{len(docs)} documents, {len(args.check or CHECKS)} checks, {len(problems)} problems",
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
