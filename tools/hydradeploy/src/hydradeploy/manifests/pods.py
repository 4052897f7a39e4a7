"""Pod specs found in manifests: workload templates and the pods charts would create."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from hydradeploy.manifests.cluster import GPU_RESOURCES
from hydradeploy.manifests.load import LOADER, Doc


@dataclass(frozen=True)
class PodTemplate:
    """A pod spec found in a workload (or synthesised from a chart's values)."""

    doc: Doc
    owner: str  # "Deployment ai-inference/tabbyapi", "JupyterHub profile gpu-1"
    namespace: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]

    def containers(self) -> list[dict[str, Any]]:
        """The spec's containers (asked by most checks, of every pod: listed once)."""
        cached = self.__dict__.get("_containers")
        if cached is None:
            cached = [c for c in self.spec.get("containers") or [] if isinstance(c, dict)]
            object.__setattr__(self, "_containers", cached)
        return list(cached)

    def gpu_request(self) -> dict[str, int]:
        """Effective per-pod request of each GPU resource (containers summed, the largest
        init container if bigger), reading requests or, failing that, limits. Computed
        once: three checks ask for every pod's."""
        cached = self.__dict__.get("_gpu_request")
        if cached is None:
            cached = self._gpu_request()
            object.__setattr__(self, "_gpu_request", cached)
        return dict(cached)

    def _gpu_request(self) -> dict[str, int]:

        def amount(c: Mapping[str, Any], res: str) -> int:
            r = c.get("resources") or {}
            v = (r.get("requests") or {}).get(res, (r.get("limits") or {}).get(res, 0))
            return int(v)

        # the containers in one pass (asked of every pod of the tree)
        main = dict.fromkeys(GPU_RESOURCES, 0)
        for c in self.containers():
            for res in GPU_RESOURCES:
                main[res] += amount(c, res)
        inits = self.spec.get("initContainers") or []
        out = {}
        for res in GPU_RESOURCES:
            init = max((amount(c, res) for c in inits), default=0)
            if max(main[res], init):
                out[res] = max(main[res], init)
        return out


WORKLOAD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def dig(obj: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def pod_templates(
    docs: Iterable[Doc], values_of: Callable[[Doc], dict[str, Any]] | None = None
) -> list[PodTemplate]:
    """Every pod spec of the documents; a HelmChart's from its values (`values_of`, the
    values we set by default)."""
    values_of = values_of or chart_values
    out = []
    for d in docs:
        if d.kind == "Pod":
            out.append(
                PodTemplate(d, f"Pod {d.namespace}/{d.name}", d.namespace, d.labels(), d.spec)
            )
        elif d.kind in WORKLOAD_TEMPLATE_PATHS:
            tmpl = dig(d.obj, WORKLOAD_TEMPLATE_PATHS[d.kind])
            if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
                raw = (tmpl.get("metadata") or {}).get("labels") or {}
                # the document's own dict when it is one (nothing changes it): no copy
                labels = raw if type(raw) is dict else dict(raw)
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
            out.extend(jupyterhub_profiles(d, values_of(d)))
    return out


def chart_values(d: Doc) -> dict[str, Any]:
    text = d.spec.get("valuesContent")
    if not text:
        return {}
    values = yaml.load(text, Loader=LOADER)
    return values if isinstance(values, dict) else {}


def jupyterhub_profiles(d: Doc, values: dict[str, Any] | None = None) -> list[PodTemplate]:
    """The user pods KubeSpawner would create for each profile of the chart's values."""
    single = (chart_values(d) if values is None else values).get("singleuser") or {}
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
        out.append(PodTemplate(d, f"JupyterHub profile {p.get('slug', '?')}", ns, {}, spec))
    return out
