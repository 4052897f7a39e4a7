"""The simulated k3s deploy controller (k3s pkg/deploy/controller.go, v1.35 line) and
the manifests part of a lab closure's activation (systemd-tmpfiles `L+` rules, as the
nixpkgs k3s module writes them). docs/prune.md lists every upstream fact used here.

Controller, per file of /var/lib/rancher/k3s/server/manifests:
  * Addon kube-system/<basename up to the first period>, spec.source = path,
    spec.checksum = sha256 hex of the bytes, annotation addon.k3s.cattle.io/gvks;
  * objects applied as wrangler's apply WithOwner(addon) does (pkg/apply
    desiredset_apply.go): label objectset.rio.cattle.io/hash, annotations id/owner-gvk/
    owner-name/owner-namespace, objectset.rio.cattle.io/applied on create; objects that
    left the file are deleted (per GVK, by the hash label); no ownerReferences;
  * a file that disappears: nothing happens (its Addon and objects stay).
Standard library only, plus PyYAML when the interpreter has it (Debian's python3-yaml);
without it a YAML file fails to parse, as a bad file does in k3s.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .k3s_objects import ApiError, Kind, Store, find_kind

# upstream: nixpkgs nixos/modules/services/cluster/rancher/default.nix @011c1bdb102b
# (`manifestDir = "/var/lib/rancher/${name}/server/manifests"`, name = "k3s")
MANIFESTS = Path("/var/lib/rancher/k3s/server/manifests")
TMPFILES_RULES = "etc/tmpfiles.d/10-k3s.conf"  # systemd.tmpfiles.settings."10-k3s" (same module)

# k3s pkg/deploy/controller.go
GVK_ANNOTATION = "addon.k3s.cattle.io/gvks"
GVK_SEP = ";"
INTERVAL = 15.0  # start(): time.After(15 * time.Second)
# wrangler pkg/apply/desiredset_apply.go / desiredset_compare.go
LABEL_ID = "objectset.rio.cattle.io/id"
LABEL_GVK = "objectset.rio.cattle.io/owner-gvk"
LABEL_NAME = "objectset.rio.cattle.io/owner-name"
LABEL_NAMESPACE = "objectset.rio.cattle.io/owner-namespace"
LABEL_HASH = "objectset.rio.cattle.io/hash"
LABEL_APPLIED = "objectset.rio.cattle.io/applied"
ADDON_GVK = "k3s.cattle.io/v1, Kind=Addon"


def objectset_hash(addon: str, namespace: str = "kube-system", set_id: str = "") -> str:
    """sha1(setID + owner GVK + owner name + owner namespace) (wrangler objectSetHash,
    hashOrder); k3s applies with no set ID (pkg/server stageFiles: apply.New(...))."""
    return hashlib.sha1((set_id + ADDON_GVK + addon + namespace).encode()).hexdigest()


def basename(path: str) -> str:
    """k3s basename(): the file name up to its first period."""
    return os.path.basename(path).split(".", 1)[0]


def should_skip(name: str, skips: set[str]) -> bool:
    """k3s shouldSkipFile: dotfiles, X when X.skip exists, anything not yaml/yml/json."""
    if name.startswith(".") or name in skips:
        return True
    return not name.lower().endswith((".yaml", ".yml", ".json"))


def parse(content: bytes) -> list[dict[str, Any]]:
    """yamlToObjects: every non-empty document; a List's items are separate objects."""
    import yaml  # Debian's python3-yaml; absent → ImportError → a parse failure

    out: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(content.decode()):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise ValueError("Object 'Kind' is missing in document")
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out


def applied_annotation(obj: dict[str, Any]) -> str:
    """JSON, gzip, base64 without padding (wrangler appliedToAnnotation)."""
    data = gzip.compress(json.dumps(obj, sort_keys=True).encode(), mtime=0)
    return base64.b64encode(data).decode().rstrip("=")


def _log(message: str) -> None:
    print(f'level=info msg="{message}"', flush=True)


def _error(message: str) -> None:
    print(f'level=error msg="{message}"', flush=True)


class Controller:
    def __init__(self, store: Store, base: Path = MANIFESTS, interval: float = INTERVAL) -> None:
        self.store = store
        self.base = base
        self.interval = interval
        self.mod_time: dict[str, float] = {}

    def run_forever(self) -> None:
        force = False  # the forced first pass ran in start()
        while True:
            time.sleep(self.interval)
            self.list_files(force)

    def start(self) -> None:
        """The forced first pass now (every file applied), then a pass every interval."""
        self.list_files(force=True)
        threading.Thread(target=self.run_forever, daemon=True).start()

    def list_files(self, force: bool) -> None:
        files: dict[str, os.stat_result] = {}
        for root, _dirs, names in os.walk(self.base, followlinks=True):
            for name in names:
                path = os.path.join(root, name)
                try:
                    files[path] = os.lstat(path)  # filepath.Walk: Lstat (a link's own mtime)
                except OSError:
                    continue
        skips = {os.path.basename(p)[: -len(".skip")] for p in files if p.endswith(".skip")}
        for path in sorted(files):
            if should_skip(os.path.basename(path), skips):
                continue
            mtime = files[path].st_mtime
            if not force and self.mod_time.get(path) == mtime:
                continue
            try:
                self.deploy(path, compare_checksum=not force)
                self.mod_time[path] = mtime
            except Exception as exc:  # k3s logs "Failed to process config" and goes on
                _error(f"failed to process {path}: {exc}")

    # ------------------------------------------------------------------ one file

    def deploy(self, path: str, compare_checksum: bool) -> None:
        addon_kind = find_kind("Addon")
        name = basename(path)
        addon = self.store.get(addon_kind, "kube-system", name)
        if addon is None:
            addon = self.store.put(addon_kind, {
                "metadata": {"name": name, "namespace": "kube-system"},
                "spec": {"source": path},
            }, create_only=True)  # fmt: skip
        addon["spec"]["source"] = path
        content = Path(path).read_bytes()  # a dangling link fails here: ReadManifestFailed
        checksum = hashlib.sha256(content).hexdigest()
        if compare_checksum and checksum == addon["spec"].get("checksum"):
            return
        objects = parse(content)
        annotations = addon["metadata"].get("annotations") or {}
        previous = [g for g in annotations.get(GVK_ANNOTATION, "").split(GVK_SEP) if g]
        _log(f"Applying manifest at {path}")
        gvks = self.apply(name, objects, previous)
        _log(f"Applied manifest at {path}")
        addon["spec"]["checksum"] = checksum
        addon["metadata"]["annotations"] = {**annotations, GVK_ANNOTATION: GVK_SEP.join(gvks)}
        self.store.put(addon_kind, addon)

    def apply(self, owner: str, objects: list[dict[str, Any]], previous: list[str]) -> list[str]:
        """wrangler apply WithOwner(Addon owner).WithGVK(previous…).Apply(objects): per GVK
        (file order, then previously applied ones), create/update the desired objects
        and delete those carrying the owner's hash that are no longer desired. Returns
        the file's GVKs (the new gvks annotation); raises after the last GVK on errors."""
        owner_hash = objectset_hash(owner)
        marks = {LABEL_ID: "", LABEL_GVK: ADDON_GVK, LABEL_NAME: owner,
                 LABEL_NAMESPACE: "kube-system"}  # fmt: skip
        order: list[str] = []
        desired: dict[str, list[dict[str, Any]]] = {}
        for obj in objects:
            gvk = _gvk_of(obj)
            if gvk not in desired:
                order.append(gvk)
                desired[gvk] = []
            desired[gvk].append(obj)
        errors: list[str] = []
        for gvk in order + sorted(set(previous) - set(order)):
            kind = self._kind(gvk)
            if kind is None:
                errors.append(f"no matches for kind {gvk}")
                continue
            keep: set[tuple[str, str]] = set()
            for obj in desired.get(gvk, []):
                obj = json.loads(json.dumps(obj))
                meta = obj.setdefault("metadata", {})
                meta["labels"] = {**(meta.get("labels") or {}), LABEL_HASH: owner_hash}
                ann = {
                    k: v for k, v in (meta.get("annotations") or {}).items() if k != LABEL_APPLIED
                }
                meta["annotations"] = {**ann, **marks}
                if kind.namespaced:
                    meta["namespace"] = meta.get("namespace") or "default"  # adjustNamespace
                else:
                    meta.pop("namespace", None)  # clearNamespace
                ns = meta.get("namespace", "")
                existing = self.store.get(kind, ns, meta.get("name", ""))
                if existing is None:
                    meta["annotations"][LABEL_APPLIED] = applied_annotation(obj)
                else:
                    old_applied = (existing["metadata"].get("annotations") or {}).get(LABEL_APPLIED)
                    if old_applied:
                        meta["annotations"][LABEL_APPLIED] = old_applied
                    if "status" in existing:
                        obj["status"] = existing["status"]
                try:
                    self.store.put(kind, obj)
                    keep.add((ns, meta.get("name", "")))
                except ApiError as exc:
                    errors.append(f"failed to create {ns}/{meta.get('name')} {gvk}: {exc.message}")
            for old in self.store.list(kind, None, f"{LABEL_HASH}={owner_hash}"):
                key = (old["metadata"].get("namespace", ""), old["metadata"]["name"])
                if key not in keep:
                    with contextlib.suppress(ApiError):
                        self.store.delete(kind, *key)
        if errors:
            raise RuntimeError("; ".join(errors))
        return order

    def _kind(self, gvk: str) -> Kind | None:
        group_version, _, kind = gvk.partition(", Kind=")
        group, _, version = group_version.partition("/")
        api_version = f"{group}/{version}" if group else version
        return self.store.kind_for(api_version, kind)


def _gvk_of(obj: dict[str, Any]) -> str:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    return f"{group}/{version}, Kind={obj['kind']}"


def stage_packaged(names: list[str], base: Path = MANIFESTS) -> None:
    """k3s deploy.Stage writes its packaged addons (coredns.yaml, …) as regular files
    into the manifests directory. Their contents are not simulated: a comment only, so
    their Addons exist and own no objects."""
    base.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = base / f"{name}.yaml"
        if not path.exists():
            path.write_text(
                f"# k3s packaged component {name} (contents not simulated in the lab)\n"
            )


def start(packaged: list[str], state_dir: Path) -> Store:
    """The server's object store and its deploy controller (first pass done on return)."""
    store = Store(state_dir / "lab-objects.json")
    stage_packaged(packaged)
    Controller(store).start()
    return store


def serve_objects(
    handler: Any, objects: Store | None, upstream: str | None, method: str, body: bytes | None
) -> bool:
    """The API server's object paths for k3s_sim's handler; False when not one. A server
    that is not cluster-init forwards them (k3s_sim: the replicated datastore)."""
    if objects is None:
        if upstream and handler.path.startswith("/api") and "/nodes" not in handler.path:
            handler._proxy(method, body)
            return True
        return False
    reply = objects.handle(method, handler.path, body)
    if reply is not None:
        handler._send(*reply)
    return reply is not None


# ---------------------------------------------------------------------- activation


def tmpfiles_rules(text: str) -> list[tuple[str, str, str]]:
    """(type, path, argument) of each line of a tmpfiles.d file as nixpkgs writes them:
    'L+' 'PATH' 'MODE' 'USER' 'GROUP' 'AGE' ARGUMENT (nixos systemd/tmpfiles.nix
    settingsEntryToRule)."""
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line)
        if len(words) >= 7:
            rules.append((words[0], words[1], words[6]))
    return rules


def link_manifests(closure: Path) -> None:
    """What `systemd-tmpfiles --create` does with the closure's k3s rules: `L+` replaces
    PATH with a symlink to ARGUMENT. Links of manifests that left the configuration
    are not removed (no rule names them any more). A lab closure cannot name its own
    store path inside itself (`nix-store --add` is content-addressed), so its rules say
    @OUT@ for it."""
    try:
        text = (closure / TMPFILES_RULES).read_text()
    except OSError:
        return
    for kind, path, target in tmpfiles_rules(text):
        if kind != "L+":
            continue
        link = Path(path)
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(target.replace("@OUT@", str(closure)), tmp)
        os.replace(tmp, link)


if __name__ == "__main__":  # pragma: no cover - manual use inside a host
    link_manifests(Path(sys.argv[1]))
