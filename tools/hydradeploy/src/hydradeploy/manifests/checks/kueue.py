"""Kueue queues, flavors and queued Jobs that fit together."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.cluster import GPU_RESOURCES
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.tree import Tree


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
