"""Claims that bind, and NFS shares that the inventory exports."""

from __future__ import annotations

from hydradeploy.manifests.checks.registry import check
from hydradeploy.manifests.cluster import BUILTIN_STORAGE_CLASSES
from hydradeploy.manifests.pods import dig
from hydradeploy.manifests.problem import Problem
from hydradeploy.manifests.selectors import walk_keys
from hydradeploy.manifests.tree import Tree


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
            out.append(Problem(str(d), "storage", f"StorageClass {sc!r} does not exist"))
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
            if not set(d.spec.get("accessModes") or []) <= set(pv.spec.get("accessModes") or []):
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
            out.append(Problem(str(d), "storage", f"StorageClass {sc!r} does not exist"))
    for d in t.of_kind("HelmChart"):
        for path, _, value in walk_keys(t.values(d), {"storageClass", "storageClassName"}):
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
            elif dig(d.spec, ("csi", "driver")) == "nfs.csi.k8s.io":
                attrs = dig(d.spec, ("csi", "volumeAttributes")) or {}
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
