"""The simulated k3s server's object store: the Kubernetes objects of the kinds the
deploy controller and `hydradeploy prune` work with, kept in one JSON file like etcd
would keep them across restarts (/var/lib/rancher/k3s/server/lab-objects.json).

Serves the REST paths kubectl uses: /api/v1/[namespaces/NS/]PLURAL[/NAME] and
/apis/GROUP/VERSION/[namespaces/NS/]PLURAL[/NAME], GET (with labelSelector=k=v,…),
POST (create), PUT (replace) and DELETE, with Kubernetes' Status bodies for NotFound/AlreadyExists.
Standard library only (it runs inside the lab hosts).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool
    short: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> str:
        """Go's schema.GroupVersionKind.String(): "apps/v1, Kind=Deployment", "/v1, Kind=…"."""
        return f"{self.group}/{self.version}, Kind={self.kind}"


# Built-in kinds (scope and plural as the Kubernetes API serves them).
BUILTIN = (
    Kind("Namespace", "", "v1", "namespaces", False, ("ns",)),
    Kind("ConfigMap", "", "v1", "configmaps", True, ("cm",)),
    Kind("Secret", "", "v1", "secrets", True),
    Kind("Service", "", "v1", "services", True, ("svc",)),
    Kind("ServiceAccount", "", "v1", "serviceaccounts", True, ("sa",)),
    Kind("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", True, ("pvc",)),
    Kind("PersistentVolume", "", "v1", "persistentvolumes", False, ("pv",)),
    Kind("ResourceQuota", "", "v1", "resourcequotas", True, ("quota",)),
    Kind("LimitRange", "", "v1", "limitranges", True, ("limits",)),
    Kind("Pod", "", "v1", "pods", True, ("po",)),
    Kind("Deployment", "apps", "v1", "deployments", True, ("deploy",)),
    Kind("StatefulSet", "apps", "v1", "statefulsets", True, ("sts",)),
    Kind("DaemonSet", "apps", "v1", "daemonsets", True, ("ds",)),
    Kind("ReplicaSet", "apps", "v1", "replicasets", True, ("rs",)),
    Kind("Job", "batch", "v1", "jobs", True),
    Kind("CronJob", "batch", "v1", "cronjobs", True, ("cj",)),
    Kind("Ingress", "networking.k8s.io", "v1", "ingresses", True, ("ing",)),
    Kind("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", True, ("netpol",)),
    Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", True, ("pdb",)),
    Kind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", True, ("hpa",)),
    Kind("Role", "rbac.authorization.k8s.io", "v1", "roles", True),
    Kind("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", True),
    Kind("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False),
    Kind("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    Kind("PriorityClass", "scheduling.k8s.io", "v1", "priorityclasses", False, ("pc",)),
    Kind("StorageClass", "storage.k8s.io", "v1", "storageclasses", False, ("sc",)),
    Kind("RuntimeClass", "node.k8s.io", "v1", "runtimeclasses", False),
    Kind("CustomResourceDefinition", "apiextensions.k8s.io", "v1",
         "customresourcedefinitions", False, ("crd", "crds")),
    # k3s's own CRDs (k3s pkg/server: Addon; helm-controller: HelmChart, HelmChartConfig)
    Kind("Addon", "k3s.cattle.io", "v1", "addons", True),
    Kind("HelmChart", "helm.cattle.io", "v1", "helmcharts", True),
    Kind("HelmChartConfig", "helm.cattle.io", "v1", "helmchartconfigs", True),
)  # fmt: skip


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}  # fmt: skip


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _terms(selector: str) -> list[str]:
    """Split a selector at the commas that are not inside `in (…)` sets."""
    terms, depth, cur = [], 0, ""
    for ch in selector:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    terms.append(cur.strip())
    return [t for t in terms if t]


def matches(labels: dict[str, str], selector: str) -> bool:
    """Kubernetes label selectors: k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k."""
    for term in _terms(selector):
        words = term.split(None, 1)
        if len(words) == 2 and words[1].split("(")[0].strip() in ("in", "notin"):
            op, _, rest = words[1].partition("(")
            values = {v.strip() for v in rest.rstrip(")").split(",")}
            if (labels.get(words[0]) in values) != (op.strip() == "in"):
                return False
        elif "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


class Store:
    """Objects keyed "apiVersion|Kind|namespace|name"; one lock, saved after each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError):
            self.objects = json.loads(path.read_text())
        # The API server's own namespaces (kube-apiserver's system namespaces controller).
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            if self.get(find_kind("Namespace"), "", ns) is None:
                self.put(find_kind("Namespace"), {"metadata": {"name": ns}})

    # ------------------------------------------------------------------ kinds

    def kinds(self) -> list[Kind]:
        """Built-in kinds plus those of every stored CRD (as the API server serves them)."""
        out = list(BUILTIN)
        for obj in self.list(find_kind("CustomResourceDefinition")):
            spec = obj.get("spec", {})
            names = spec.get("names", {})
            for ver in spec.get("versions", []):
                if ver.get("served", True) and names.get("kind") and names.get("plural"):
                    out.append(Kind(names["kind"], spec.get("group", ""), ver["name"],
                                    names["plural"], spec.get("scope") != "Cluster",
                                    tuple(names.get("shortNames", []))))  # fmt: skip
        return out

    def kind_for(self, api_version: str, kind: str) -> Kind | None:
        group, _, version = api_version.rpartition("/")
        for k in self.kinds():
            if k.kind == kind and k.group == group and k.version == version:
                return k
        return None

    def kind_by_path(self, group: str, version: str, plural: str) -> Kind | None:
        for k in self.kinds():
            if k.plural == plural and k.group == group and k.version == version:
                return k
        return None

    # ------------------------------------------------------------------ CRUD

    @staticmethod
    def _key(k: Kind, namespace: str, name: str) -> str:
        return f"{k.api_version}|{k.kind}|{namespace if k.namespaced else ''}|{name}"

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.objects))
        os.replace(tmp, self.path)

    def get(self, k: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.get(self._key(k, namespace, name))
            return json.loads(json.dumps(obj)) if obj is not None else None

    def list(
        self, k: Kind, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]:
        prefix = f"{k.api_version}|{k.kind}|"
        with self.lock:
            found = [o for key, o in sorted(self.objects.items()) if key.startswith(prefix)]
        return [
            json.loads(json.dumps(o)) for o in found
            if (namespace is None or not k.namespaced or o["metadata"].get("namespace") == namespace)
            and matches(o["metadata"].get("labels") or {}, selector)
        ]  # fmt: skip

    def put(self, k: Kind, obj: dict[str, Any], *, create_only: bool = False) -> dict[str, Any]:
        """Create or replace (keeping uid and creationTimestamp, bumping resourceVersion)."""
        meta = obj.setdefault("metadata", {})
        name = meta.get("name", "")
        if not name:
            raise ApiError(422, "Invalid", f"{k.kind} is invalid: metadata.name: Required value")
        if k.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        namespace = meta.get("namespace", "")
        with self.lock:
            if (
                k.namespaced
                and k.kind != "Namespace"
                and not self.objects.get(self._key(find_kind("Namespace"), "", namespace))
            ):
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
            key = self._key(k, namespace, name)
            old = self.objects.get(key)
            if old is not None and create_only:
                raise ApiError(409, "AlreadyExists", f'{k.plural}.{k.group or ""}'.rstrip(".")
                               + f' "{name}" already exists')  # fmt: skip
            obj["apiVersion"], obj["kind"] = k.api_version, k.kind
            now = time.time()
            meta["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"] if old else _iso(now)
            meta["resourceVersion"] = str(int(now * 1000))
            self.objects[key] = obj
            if k.kind == "StatefulSet":
                self._claims_for(obj)
            self._save()
            saved: dict[str, Any] = json.loads(json.dumps(obj))
            return saved

    def _claims_for(self, sts: dict[str, Any]) -> None:
        """The StatefulSet controller's PVCs: TEMPLATE-STS-ORDINAL for each replica, labels
        of the template plus the selector's matchLabels (kubernetes
        pkg/controller/statefulset/stateful_set_utils.go getPersistentVolumeClaimName,
        getPersistentVolumeClaims). They are never deleted with the StatefulSet (default
        persistentVolumeClaimRetentionPolicy whenDeleted: Retain)."""
        spec = sts.get("spec", {})
        pvc = find_kind("PersistentVolumeClaim")
        namespace, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        select = (spec.get("selector") or {}).get("matchLabels") or {}
        for ordinal in range(int(spec.get("replicas", 1))):
            for tmpl in spec.get("volumeClaimTemplates", []):
                claim_name = f"{tmpl['metadata']['name']}-{name}-{ordinal}"
                key = self._key(pvc, namespace, claim_name)
                if key in self.objects:
                    continue
                labels = {**(tmpl["metadata"].get("labels") or {}), **select}
                now = time.time()
                self.objects[key] = {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim_name, "namespace": namespace, "labels": labels,
                                 "uid": str(uuid.uuid4()), "creationTimestamp": _iso(now),
                                 "resourceVersion": str(int(now * 1000))},
                    "spec": tmpl.get("spec", {}), "status": {"phase": "Bound"},
                }  # fmt: skip

    def delete(self, k: Kind, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            key = self._key(k, namespace, name)
            obj: dict[str, Any] | None = self.objects.pop(key, None)
            if obj is None:
                raise ApiError(404, "NotFound", f'{_resource(k)} "{name}" not found')
            if k.kind == "Namespace":
                # The namespace controller deletes everything in it.
                for other in [o for o in self.objects if o.split("|")[2] == name]:
                    del self.objects[other]
            self._save()
            return obj

    # ------------------------------------------------------------------ REST

    def handle(self, method: str, raw_path: str, body: bytes | None) -> tuple[int, Any] | None:
        """(status, JSON body) for an object path; None when the path is not one."""
        path, _, query = raw_path.partition("?")
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            return None
        k = self.kind_by_path(group, version, rest[0])
        if k is None or k.kind == "Node":
            return None
        name = rest[1] if len(rest) == 2 else None
        selector = parse_qs(query).get("labelSelector", [""])[0]
        try:
            if method == "GET" and name is None:
                items = self.list(k, namespace, selector)
                return 200, {"apiVersion": "v1", "kind": "List", "items": items,
                             "metadata": {"resourceVersion": ""}}  # fmt: skip
            if method == "GET" and name is not None:
                obj = self.get(k, namespace or "", name)
                if obj is None:
                    raise ApiError(404, "NotFound", f'{_resource(k)} "{name}" not found')
                return 200, obj
            if method == "POST" and name is None:
                obj = json.loads(body or b"{}")
                if namespace and k.namespaced:
                    obj.setdefault("metadata", {})["namespace"] = namespace
                return 201, self.put(k, obj, create_only=True)
            if method == "PUT" and name is not None:
                obj = json.loads(body or b"{}")
                if self.get(k, namespace or "", name) is None:
                    raise ApiError(404, "NotFound", f'{_resource(k)} "{name}" not found')
                return 200, self.put(k, obj)
            if method == "DELETE" and name is not None:
                self.delete(k, namespace or "", name)
                return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                             "details": {"name": name, "kind": k.plural}}  # fmt: skip
        except ApiError as exc:
            return exc.code, exc.status()
        except ValueError:
            return 400, ApiError(400, "BadRequest", "the body is not JSON").status()
        return 405, ApiError(405, "MethodNotAllowed", f"{method} not allowed").status()


def _resource(k: Kind) -> str:
    """kubectl's resource name in messages: "deployments.apps", "configmaps"."""
    return f"{k.plural}.{k.group}" if k.group else k.plural


def find_kind(kind: str) -> Kind:
    for k in BUILTIN:
        if k.kind == kind:
            return k
    raise KeyError(kind)
