"""What the checks read of a document, for callers that must hold many documents at once.

The converter runs every check over its whole output (convert/cluster_fit.py) and so
holds every generated document until the checks ran: at 10,000 containers that was
most of its memory. After a file is written it keeps only what some check reads:
`strip_unread` drops the rest in place. k8s-check keeps its documents whole.

What the checks read (checks/*.py, tree.py, pods.py, selectors.py): a document's
apiVersion, kind, metadata name, namespace and labels, its spec and other top-level
fields (a PriorityClass's value, a StorageClass's parameters: all kept); of a workload's pod
template the labels and the pod spec; of a container its name, env, envFrom, resources,
ports and whether it has a readiness and liveness probe. Never read: annotations, the
data of ConfigMaps and Secrets, a container's image, command, args, mounts and the
rest. A check that starts to read more must add it here: tests/convert/test_read_set.py
runs every check over whole and stripped documents (k8s/ and converted outputs) and
requires the same problems.
"""

from __future__ import annotations

from typing import Any

from hydradeploy.manifests.pods import WORKLOAD_TEMPLATE_PATHS

CONTAINER_KEYS = frozenset(["name", "env", "envFrom", "resources", "ports"])
# only their presence is read (the workloads check): the probe itself is dropped
PROBES = ("readinessProbe", "livenessProbe")
_PRESENT: dict[str, Any] = {}
# a Secret keeps its data: none belongs in the output, and the converter writes its
# Secrets elsewhere from their own documents, which must never lose a value
DATA_KINDS = frozenset(["ConfigMap"])


def strip_unread(obj: dict[str, Any]) -> None:
    """Drop, in place, every part of `obj` that no check reads (the document must not be
    written or compared after this)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("annotations", None)
    kind = obj.get("kind")
    if kind in DATA_KINDS:
        for key in ("data", "binaryData"):
            obj.pop(key, None)
        return
    path = WORKLOAD_TEMPLATE_PATHS.get(kind) if isinstance(kind, str) else None
    if path is None:
        return
    template: Any = obj
    for key in path:
        template = template.get(key) if isinstance(template, dict) else None
    if not isinstance(template, dict):
        return
    tmeta = template.get("metadata")
    if isinstance(tmeta, dict):
        tmeta.pop("annotations", None)
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or ():
            if isinstance(c, dict):
                _strip_container(c)


def _strip_container(c: dict[str, Any]) -> None:
    for key in [k for k in c if k not in CONTAINER_KEYS]:
        if key in PROBES:
            c[key] = _PRESENT
        else:
            del c[key]
