"""Prune: delete the objects of k3s auto-deploy manifests whose file is gone, which k3s
itself never does (docs/prune.md has every upstream fact with its source).

Three parts:
  gather(run)            read the server: manifests directory, the running generation's
                         tmpfiles rules, Addons, the objects each removed Addon owns
                         (found by k3s's own hash label, checked against its owner
                         annotations), its StatefulSets' claims, the removed namespaces'
                         and CRDs' other contents;
  plan(snapshot, …)      pure: what to delete, what to keep, in a safe order;
  execute(run, items)    delete, stage by stage.
`run` is the one way to the server (argv, timeout) -> Result: `remote_runner` gives it
for an SSH connection; tests give it anything.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from hydradeploy.deploy.remote import Remote, Result

# upstream: nixpkgs nixos/modules/services/cluster/rancher/default.nix @011c1bdb102b
# (`manifestDir = "/var/lib/rancher/${name}/server/manifests"`, name = "k3s")
MANIFESTS = "/var/lib/rancher/k3s/server/manifests"
# nixpkgs: systemd.tmpfiles.settings."10-k3s" -> /etc/tmpfiles.d/10-k3s.conf, and the
# toplevel links etc (top-level.nix), so this is what the running generation declares.
RULES = "/run/current-system/etc/tmpfiles.d/10-k3s.conf"

# wrangler v3 pkg/apply/desiredset_apply.go; k3s pkg/deploy/controller.go
LABEL_HASH = "objectset.rio.cattle.io/hash"
ANN_ID = "objectset.rio.cattle.io/id"
ANN_GVK = "objectset.rio.cattle.io/owner-gvk"
ANN_NAME = "objectset.rio.cattle.io/owner-name"
ANN_NAMESPACE = "objectset.rio.cattle.io/owner-namespace"
ADDON_GVK = "k3s.cattle.io/v1, Kind=Addon"
GVK_ANNOTATION = "addon.k3s.cattle.io/gvks"
# Ours: put on a StatefulSet's claims that are kept while the StatefulSet is deleted, so a
# later `prune --include-data` still knows whose data they are (value: the Addon's hash).
LABEL_KEPT = "hydra.io/pruned-from"

KUBECTL_TIMEOUT = 60.0
DELETE_TIMEOUT = 120.0


class Runner(Protocol):
    """(argv, timeout, stdin) -> Result: how prune runs a command on the server."""

    def __call__(
        self, argv: Sequence[str], timeout: float, stdin: bytes | None = None
    ) -> Result: ...


def remote_runner(remote: Remote) -> Runner:
    """The one place prune reaches the server: an open SSH connection of the deploy."""

    def run(argv: Sequence[str], timeout: float, stdin: bytes | None = None) -> Result:
        return remote.run(list(argv), timeout=timeout, stdin=stdin, what=" ".join(argv[:3]))

    return run


class PruneError(Exception):
    """The server could not be read; the message says what and where."""


def objectset_hash(addon: str, namespace: str = "kube-system", set_id: str = "") -> str:
    """The `objectset.rio.cattle.io/hash` label of an Addon's objects: sha1 of set ID +
    owner GVK + owner name + owner namespace (wrangler objectSetHash; k3s sets no ID)."""
    return hashlib.sha1((set_id + ADDON_GVK + addon + namespace).encode()).hexdigest()


# ------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class Item:
    """One row of the plan: a Kubernetes object, an Addon, or a stale manifest link."""

    kind: str
    namespace: str
    name: str
    file: str  # the Addon's spec.source
    action: str = "delete"  # delete | keep
    reason: str = ""
    resource: str = ""  # what kubectl is given: "deployment.apps", "configmap", …
    api_version: str = ""
    stage: int = 0
    claim_of: str = ""  # the StatefulSet whose volumeClaimTemplates made this PVC
    done: bool | None = None
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        hidden = ("resource", "stage", "claim_of", "api_version")
        out = {k: v for k, v in asdict(self).items() if k not in hidden}
        if self.done is None:
            out.pop("done")
            out.pop("error")
        return out


@dataclass
class Snapshot:
    """What gather() read; plan() needs nothing else."""

    files: dict[str, tuple[bool, bool]]  # path -> (is a symlink, target exists)
    rules: list[str] | None  # paths the running generation's L+ rules name; None: no file
    addons: list[dict[str, Any]]
    owned: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # addon -> objects
    claims: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ns -> PVCs
    kept: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # addon -> LABEL_KEPT PVCs
    contents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ns -> objects
    instances: dict[str, int] = field(default_factory=dict)  # CRD name -> custom resources
    targets: dict[str, str] = field(default_factory=dict)  # symlink path -> its target


# Deletion stages (docs/prune.md): anything not named is a workload (stage 2).
STAGE_FILE, STAGE_WORKLOAD, STAGE_NETWORK, STAGE_CONFIG = 1, 2, 3, 4
STAGE_DATA, STAGE_NAMESPACE, STAGE_CRD, STAGE_ADDON = 5, 6, 7, 8
STAGES = {
    **dict.fromkeys(("Service", "Ingress", "IngressClass", "NetworkPolicy", "Endpoints",
                     "EndpointSlice"), STAGE_NETWORK),
    **dict.fromkeys(("ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding",
                     "ClusterRole", "ClusterRoleBinding", "ResourceQuota", "LimitRange",
                     "PriorityClass", "StorageClass", "RuntimeClass",
                     "HelmChartConfig"), STAGE_CONFIG),
    "PersistentVolumeClaim": STAGE_DATA,
    "PersistentVolume": STAGE_DATA,
    "Namespace": STAGE_NAMESPACE,
    "CustomResourceDefinition": STAGE_CRD,
}  # fmt: skip
DATA_KINDS = ("PersistentVolumeClaim", "PersistentVolume", "CustomResourceDefinition")
# Made in every namespace by Kubernetes' own controllers (root-ca-cert-publisher,
# serviceaccounts controller); they never keep a namespace from being pruned.
DEFAULTS = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}

# Namespaced kinds looked at before a namespace is deleted (plus every GVK an Addon
# applied): deleting a namespace deletes all in it, and nothing foreign may go with it.
SURVEY = (
    "pods", "deployments.apps", "statefulsets.apps", "daemonsets.apps", "replicasets.apps",
    "jobs.batch", "cronjobs.batch", "services", "configmaps", "secrets", "serviceaccounts",
    "persistentvolumeclaims", "ingresses.networking.k8s.io",
    "networkpolicies.networking.k8s.io", "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io", "resourcequotas", "limitranges",
    "poddisruptionbudgets.policy", "horizontalpodautoscalers.autoscaling",
    "helmcharts.helm.cattle.io",
)  # fmt: skip


def gvk_resource(gvk: str) -> tuple[str, str] | None:
    """("Deployment", "deployment.apps") from "apps/v1, Kind=Deployment"."""
    group_version, sep, kind = gvk.partition(", Kind=")
    if not sep or not kind:
        return None
    group = group_version.partition("/")[0]
    return kind, f"{kind.lower()}.{group}" if group else kind.lower()


def resource_of(obj: dict[str, Any]) -> str:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}.{group}" if group else kind


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def owned_by(obj: dict[str, Any], addon: str) -> bool:
    """k3s's own record: the hash label and all owner annotations name this Addon."""
    meta = _meta(obj)
    ann = meta.get("annotations") or {}
    return (
        (meta.get("labels") or {}).get(LABEL_HASH) == objectset_hash(addon)
        and ann.get(ANN_GVK) == ADDON_GVK
        and ann.get(ANN_NAME) == addon
        and ann.get(ANN_NAMESPACE) == "kube-system"
        and ann.get(ANN_ID, "") == ""
    )


# ------------------------------------------------------------------------------ plan


def current_files(snapshot: Snapshot, base: str = MANIFESTS) -> set[str]:
    """Manifest files k3s should keep deploying: regular files (k3s's packaged addons,
    agenix-decrypted Secret manifests), links the running generation's rules name, and
    links not into /nix/store (made by hand, not by NixOS). Without a rules file every
    link whose target exists counts."""
    named = set(snapshot.rules or [])
    out = set()
    for path, (is_link, exists) in snapshot.files.items():
        by_hand = is_link and not snapshot.targets.get(path, "/nix/store/").startswith(
            "/nix/store/"
        )
        if not is_link or (snapshot.rules is None and exists) or path in named or by_hand:
            out.add(path)
    return out


def removed_addons(snapshot: Snapshot, base: str = MANIFESTS) -> list[dict[str, Any]]:
    """Addons whose spec.source lies in the manifests directory and is gone or stale."""
    current = current_files(snapshot, base)
    out = []
    for addon in snapshot.addons:
        source = str((addon.get("spec") or {}).get("source") or "")
        if _meta(addon).get("namespace") != "kube-system" or not source.startswith(base + "/"):
            continue
        if source not in current:
            out.append(addon)
    return sorted(out, key=lambda a: _meta(a).get("name", ""))


def claim_pattern(sts: dict[str, Any]) -> re.Pattern[str] | None:
    """PVC names of a StatefulSet's volumeClaimTemplates: TEMPLATE-STS-ORDINAL (kubernetes
    pkg/controller/statefulset/stateful_set_utils.go getPersistentVolumeClaimName)."""
    templates = [
        _meta(t).get("name", "") for t in (sts.get("spec") or {}).get("volumeClaimTemplates", [])
    ]
    templates = [t for t in templates if t]
    if not templates:
        return None
    name = re.escape(_meta(sts)["name"])
    alts = "|".join(re.escape(t) for t in templates)
    return re.compile(rf"^(?:{alts})-{name}-\d+$")


def plan(snapshot: Snapshot, include_data: bool = False, base: str = MANIFESTS) -> list[Item]:
    """Every row, in deletion order. Only objects a removed Addon owns (and the claims of
    its StatefulSets) are ever rows; PVCs/PVs/CRDs are kept without `include_data`; a
    namespace or CRD that holds anything not deleted here is kept."""
    rows: list[Item] = []
    for addon in removed_addons(snapshot, base):
        name = _meta(addon)["name"]
        source = str(addon["spec"]["source"])
        addon_rows: list[Item] = []
        if source in snapshot.files:
            addon_rows.append(Item("File", "", source, source, reason="stale link of an "
                                   "older generation", stage=STAGE_FILE))  # fmt: skip
        seen: set[tuple[str, str, str]] = set()
        for obj in snapshot.owned.get(name, []):
            if not owned_by(obj, name):
                continue
            meta = _meta(obj)
            key = (obj["kind"], meta.get("namespace", ""), meta["name"])
            if key in seen:
                continue
            seen.add(key)
            addon_rows.append(_row(obj, source, include_data))
            pattern = claim_pattern(obj) if obj["kind"] == "StatefulSet" else None
            for pvc in snapshot.claims.get(meta.get("namespace", ""), []) if pattern else []:
                pmeta = _meta(pvc)
                pkey = ("PersistentVolumeClaim", pmeta.get("namespace", ""), pmeta["name"])
                if pattern and pattern.match(pmeta["name"]) and pkey not in seen:
                    seen.add(pkey)
                    row = _row(pvc, source, include_data)
                    addon_rows.append(replace(row, claim_of=meta["name"]))
        for pvc in snapshot.kept.get(name, []):
            pmeta = _meta(pvc)
            pkey = ("PersistentVolumeClaim", pmeta.get("namespace", ""), pmeta["name"])
            labels = pmeta.get("labels") or {}
            if pkey not in seen and labels.get(LABEL_KEPT) == objectset_hash(name):
                seen.add(pkey)
                addon_rows.append(_row(pvc, source, include_data))
        addon_rows.append(Item("Addon", "kube-system", name, source, resource="addon.k3s.cattle.io",
                               stage=STAGE_ADDON, api_version="k3s.cattle.io/v1"))  # fmt: skip
        rows.extend(addon_rows)
    rows = _guard_containers(rows, snapshot)
    # An Addon stays while anything of it stays: a later --include-data still finds them.
    kept_files = {r.file for r in rows if r.action == "keep" and r.kind not in ("Addon", "File")}
    rows = [
        replace(r, action="keep", reason="some of its objects are kept")
        if r.kind == "Addon" and r.file in kept_files else r
        for r in rows
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (r.stage, r.kind, r.namespace, r.name))


def _row(obj: dict[str, Any], source: str, include_data: bool) -> Item:
    meta = _meta(obj)
    kind = str(obj["kind"])
    keep = kind in DATA_KINDS and not include_data
    return Item(kind, meta.get("namespace", ""), meta["name"], source,
                action="keep" if keep else "delete",
                reason="data: only with --include-data" if keep else "",
                resource=resource_of(obj), stage=STAGES.get(kind, STAGE_WORKLOAD),
                api_version=str(obj.get("apiVersion", "")))  # fmt: skip


def _guard_containers(rows: list[Item], snapshot: Snapshot) -> list[Item]:
    """Keep a Namespace that still holds anything not deleted here (deleting it would
    delete that too), and a CRD with custom resources besides ours."""
    deleted = {(r.kind, r.namespace, r.name) for r in rows if r.action == "delete"}
    out = []
    for r in rows:
        if r.kind == "Namespace" and r.action == "delete":
            foreign = sorted(
                f"{o['kind']}/{_meta(o)['name']}"
                for o in snapshot.contents.get(r.name, [])
                if _meta(o).get("namespace") == r.name
                and (o["kind"], r.name, _meta(o)["name"]) not in deleted
                and (o["kind"], _meta(o)["name"]) not in DEFAULTS
                and not _meta(o).get("ownerReferences")
            )
            foreign += sorted(
                f"{k.kind}/{k.name}" for k in rows if k.action == "keep" and k.namespace == r.name
            )
            if foreign:
                shown = ", ".join(foreign[:3]) + (" …" if len(foreign) > 3 else "")
                r = replace(r, action="keep", reason=f"still holds {shown}")
        if r.kind == "CustomResourceDefinition" and r.action == "delete":
            others = snapshot.instances.get(r.name, 0)
            if others:
                r = replace(r, action="keep", reason=f"{others} custom resource(s) still exist")
        out.append(r)
    return out


# ------------------------------------------------------------------------------ gather


def _kubectl_json(run: Runner, args: Sequence[str], what: str) -> dict[str, Any]:
    res = run(["k3s", "kubectl", *args, "-o", "json"], KUBECTL_TIMEOUT)
    if not res.ok:
        raise PruneError(f"{what}: {res.last_line() or f'exit status {res.rc}'}")
    try:
        data: dict[str, Any] = json.loads(res.stdout)
    except ValueError:
        raise PruneError(f"{what}: kubectl printed no JSON") from None
    return data


def _list(
    run: Runner, resources: Iterable[str], args: Sequence[str], what: str
) -> list[dict[str, Any]]:
    """Items of several resource types at once; when the server lacks one of them (a CRD
    gone), one by one, skipping the missing ones (k3s validateGVKs does the same)."""
    types = sorted(set(resources))
    if not types:
        return []
    try:
        items: list[dict[str, Any]] = _kubectl_json(run, ["get", ",".join(types), *args], what).get(
            "items", []
        )
        return items
    except PruneError:
        if len(types) == 1:
            raise
    out: list[dict[str, Any]] = []
    for t in types:
        try:
            out.extend(_kubectl_json(run, ["get", t, *args], what).get("items", []))
        except PruneError as exc:
            if "doesn't have a resource type" not in str(exc):
                raise
    return out


def read_files(run: Runner, base: str = MANIFESTS) -> dict[str, tuple[bool, bool]]:
    """path -> (is a symlink, its target exists), following symlinked directories."""
    # -L follows symlinked directories (k3s's walk does too); under -L, `-xtype l` is
    # true for every symlink and %Y is its target's type (N: dangling) (GNU find(1)).
    res = run(["find", "-L", base, "-mindepth", "1", "-not", "-type", "d",
               "(", "-xtype", "l", "-printf", r"L\t%Y\t%p\n", "-o",
               "-printf", r"F\t%Y\t%p\n", ")"], KUBECTL_TIMEOUT)  # fmt: skip
    if res.rc != 0 and not res.stdout:
        raise PruneError(f"cannot read {base}: {res.last_line() or f'exit status {res.rc}'}")
    files = {}
    for line in res.stdout.splitlines():
        kind, _, rest = line.partition("\t")
        target_type, _, path = rest.partition("\t")
        if path:
            files[path] = (kind == "L", target_type not in ("N", "L", "?"))
    return files


def read_targets(run: Runner, base: str = MANIFESTS) -> dict[str, str]:
    """symlink path -> its target, for the links in the directory itself and below."""
    res = run(["find", "-P", base, "-mindepth", "1", "-type", "l", "-printf", r"%p\t%l\n"],
              KUBECTL_TIMEOUT)  # fmt: skip
    return dict(line.split("\t", 1) for line in res.stdout.splitlines() if "\t" in line)


def read_rules(run: Runner, path: str = RULES, base: str = MANIFESTS) -> list[str] | None:
    """Paths under BASE that the running generation's `L+` rules name; None: no file."""
    res = run(["cat", path], KUBECTL_TIMEOUT)
    if res.rc != 0:
        return None
    out = []
    for line in res.stdout.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if len(words) >= 2 and words[0] in ("L", "L+") and words[1].startswith(base + "/"):
            out.append(words[1])
    return out


def gather(run: Runner, base: str = MANIFESTS) -> Snapshot:
    """Read the server with a fixed number of kubectl calls, however many Addons were
    removed: the objects of all of them at once (`hash in (…)`), then the claims, the
    removed namespaces' contents and the CRDs' custom resources."""
    files = read_files(run, base)
    snap = Snapshot(files, read_rules(run, RULES, base),
                    _kubectl_json(run, ["get", "addons.k3s.cattle.io", "-A"], "list Addons")
                    .get("items", []), targets=read_targets(run, base))  # fmt: skip
    removed = [_meta(a)["name"] for a in removed_addons(snap, base)]
    if not removed:
        return snap
    applied: set[str] = set()
    for addon in snap.addons:
        for gvk in (_meta(addon).get("annotations") or {}).get(GVK_ANNOTATION, "").split(";"):
            found = gvk_resource(gvk.strip())
            if found:
                applied.add(found[1])
    hashes = {objectset_hash(name): name for name in removed}
    resources = set()
    for addon in removed_addons(snap, base):
        gvks = (_meta(addon).get("annotations") or {}).get(GVK_ANNOTATION, "")
        resources |= {r[1] for r in map(gvk_resource, gvks.split(";")) if r}
    within = f"in ({','.join(sorted(hashes))})"
    objs = _list(run, resources, ["-A", "-l", f"{LABEL_HASH} {within}"],
                 "list the objects of the removed Addons")  # fmt: skip
    kept = _list(run, ["persistentvolumeclaims"], ["-A", "-l", f"{LABEL_KEPT} {within}"],
                 "list the kept claims of the removed Addons")  # fmt: skip
    for name in removed:
        snap.owned[name] = [o for o in objs if owned_by(o, name)]
        snap.kept[name] = [
            c
            for c in kept
            if (_meta(c).get("labels") or {}).get(LABEL_KEPT) == objectset_hash(name)
        ]
    mine = [o for name in removed for o in snap.owned[name]]
    if any(o.get("kind") == "StatefulSet" and claim_pattern(o) for o in mine):
        for c in _list(run, ["persistentvolumeclaims"], ["-A"], "list PVCs"):
            snap.claims.setdefault(_meta(c).get("namespace", ""), []).append(c)
    namespaces = {_meta(o)["name"] for o in mine if o.get("kind") == "Namespace"}
    if namespaces:
        for o in _list(run, set(SURVEY) | applied, ["-A"], "list what the namespaces hold"):
            if _meta(o).get("namespace") in namespaces:
                snap.contents.setdefault(_meta(o)["namespace"], []).append(o)
    for crd in (o for o in mine if o.get("kind") == "CustomResourceDefinition"):
        spec = crd.get("spec") or {}
        plural, group = (spec.get("names") or {}).get("plural"), spec.get("group")
        if plural and group:
            try:
                items = _list(run, [f"{plural}.{group}"], ["-A"], f"list {plural}.{group}")
            except PruneError:
                items = []
            snap.instances[_meta(crd)["name"]] = sum(
                1 for i in items if not any(owned_by(i, a) for a in removed)
            )
    return snap


# ------------------------------------------------------------------------------ execute


def _ref(item: Item) -> dict[str, Any]:
    """The object as `kubectl delete -f -` needs it: apiVersion, kind, name, namespace."""
    meta = {"name": item.name, **({"namespace": item.namespace} if item.namespace else {})}
    return {"apiVersion": item.api_version, "kind": item.kind, "metadata": meta}


def execute(run: Runner, items: list[Item]) -> list[Item]:
    """Delete the `delete` rows stage by stage, one `kubectl delete -f -` (a List) per
    stage; an Addon only when every object of its file went. Returns the rows with
    done/error."""
    out: dict[int, Item] = {}
    failed_files: set[str] = set()
    unlabelled = _label_kept_claims(run, items)
    for stage in sorted({i.stage for i in items}):
        todo: list[int] = []
        for idx, item in enumerate(items):
            if item.stage != stage:
                continue
            if item.action != "delete":
                out[idx] = replace(item, done=False)
            elif item.kind == "StatefulSet" and (item.namespace, item.name) in unlabelled:
                out[idx] = replace(item, done=False, error=unlabelled[(item.namespace, item.name)])
                failed_files.add(item.file)
            elif item.kind == "Addon" and item.file in failed_files:
                out[idx] = replace(
                    item, done=False, error="not deleted: some of its objects failed"
                )
            else:
                todo.append(idx)
        if not todo:
            continue
        if stage == STAGE_FILE:
            res = run(["rm", "-f", "--", *(items[i].name for i in todo)], KUBECTL_TIMEOUT)
        else:
            body = {"apiVersion": "v1", "kind": "List", "items": [_ref(items[i]) for i in todo]}
            res = run(["k3s", "kubectl", "delete", "-f", "-", "--ignore-not-found",
                       "--timeout=120s"], DELETE_TIMEOUT, json.dumps(body).encode())  # fmt: skip
        for i in todo:
            # kubectl goes on after a failed object and exits 1: those it names failed
            said = f'"{items[i].name}" deleted' in res.stdout or stage == STAGE_FILE
            ok = res.ok or said
            err = "" if ok else (res.last_line() or f"exit status {res.rc}")
            out[i] = replace(items[i], done=ok, error=err)
            if not ok:
                failed_files.add(items[i].file)
    return [out[i] for i in range(len(items))]


def not_applied(snapshot: Snapshot, base: str = MANIFESTS) -> list[str]:
    """Current manifest files k3s has no Addon for yet (it applies them asynchronously,
    every 15 s). An object moved from a removed file into such a file still carries the
    old Addon's label: pruning now would delete it until k3s applies the new file."""
    sources = {str((a.get("spec") or {}).get("source")) for a in snapshot.addons}
    names = {p.rsplit("/", 1)[-1] for p in snapshot.files}
    return sorted(
        p
        for p in current_files(snapshot, base)
        if p not in sources
        and not p.rsplit("/", 1)[-1].startswith(".")
        and p.lower().endswith((".yaml", ".yml", ".json"))
        and p.rsplit("/", 1)[-1] + ".skip" not in names
    )


def prune(
    run: Runner,
    *,
    include_data: bool = False,
    dry_run: bool = False,
    wait: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Item]:
    """gather → plan → (unless dry_run) execute. Deletes only once k3s has applied every
    current manifest file, waiting up to WAIT seconds for it (a pass every 15 s)."""
    deadline = time.monotonic() + wait
    while True:
        snapshot = gather(run)
        items = plan(snapshot, include_data=include_data)
        if dry_run or not any(i.action == "delete" for i in items):
            return items
        pending = not_applied(snapshot)
        if not pending or time.monotonic() >= deadline:
            break
        sleep(min(5.0, max(0.0, deadline - time.monotonic())))
    if pending:
        raise PruneError(
            f"k3s has not applied {pending[0]} yet ({len(pending)} file(s)); "
            "prune again once it has (its deploy controller runs every 15 s)"
        )
    return execute(run, items)


def stale_links(run: Runner, sources: Iterable[str], base: str = MANIFESTS) -> list[str]:
    """Which of SOURCES are stale links on this (other) server: every server gets the
    manifests, and a stale link left on one would bring the objects back when its k3s
    restarts."""
    snap = Snapshot(read_files(run, base), read_rules(run, RULES, base), [],
                    targets=read_targets(run, base))  # fmt: skip
    current = current_files(snap, base)
    return sorted(p for p in set(sources) if p in snap.files and p not in current)


def prune_links(run: Runner, server: str, sources: Iterable[str], dry_run: bool) -> list[Item]:
    """File rows for SERVER's stale links of SOURCES; removed unless dry_run."""
    paths = stale_links(run, sources)
    rows = [Item("File", "", p, p, reason=f"stale link on {server}", stage=STAGE_FILE)
            for p in paths]  # fmt: skip
    if dry_run or not rows:
        return rows
    res = run(["rm", "-f", "--", *paths], KUBECTL_TIMEOUT)
    err = "" if res.ok else (res.last_line() or f"exit status {res.rc}")
    return [replace(r, done=res.ok, error=err) for r in rows]


def failed(items: list[Item]) -> list[Item]:
    return [i for i in items if i.action == "delete" and i.done is False]


def _label_kept_claims(run: Runner, items: list[Item]) -> dict[tuple[str, str], str]:
    """Before their StatefulSet goes, label the claims that stay with the Addon's hash.
    Returns the StatefulSets (namespace, name) that must stay because that failed."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for i in items:
        if i.claim_of and i.action == "keep":
            name = i.file.rsplit("/", 1)[-1].split(".", 1)[0]  # k3s basename()
            groups.setdefault((i.namespace, i.claim_of, objectset_hash(name)), []).append(i.name)
    stuck = {}
    for (namespace, sts, owner), names in groups.items():
        res = run(["k3s", "kubectl", "label", "persistentvolumeclaim", *names, "-n", namespace,
                   f"{LABEL_KEPT}={owner}", "--overwrite"], KUBECTL_TIMEOUT)  # fmt: skip
        if not res.ok:  # unlabelled, the claims could not be found again once it is gone
            stuck[(namespace, sts)] = f"kept: labelling its claims failed: {res.last_line()}"
    return stuck


def summary(items: list[Item]) -> str:
    deleted = sum(1 for i in items if i.done)
    kept = sum(1 for i in items if i.action == "keep")
    failed = sum(1 for i in items if i.done is False and i.action == "delete")
    return f"{deleted} deleted, {kept} kept, {failed} failed"
