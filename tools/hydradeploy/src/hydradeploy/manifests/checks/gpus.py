"""GPU requests that fit the nodes they can land on, and roll."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.cluster import GPU_RESOURCES
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree


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
            if not req:
                continue  # both rules are about requests
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
        for c in pod.containers() if not want else ():
            for e in c.get("env") or []:
                if e.get("name") in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
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
        candidates = t.pod_candidates(pod)
        # Every node the pod may land on must hold the request: a GPU pod whose labels
        # also admit a smaller node is one inventory change away from never starting.
        unfit = [n for n in candidates if not all(n.gpus.get(r, 0) >= k for r, k in want.items())]
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
        candidates = t.pod_candidates(pod)
        for res, k in pod.gpu_request().items():
            if len(candidates) == 1:
                demand.setdefault(candidates[0].name, []).append((res, k * replicas, pod.owner))
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
