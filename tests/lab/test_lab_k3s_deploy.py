"""The lab's simulated k3s deploy controller (lab/guest/k3s_deploy.py) and object store,
without a lab: each behaviour is the upstream one written down in docs/prune.md."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("yaml")

from hydradeploy.lab.guest import k3s_deploy as d
from hydradeploy.lab.guest import k3s_objects as o

APP = """\
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: app}
data: {a: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec: {replicas: 1}
---
# an empty document and a comment are skipped
---
apiVersion: v1
kind: Service
metadata: {name: nons}
"""


@pytest.fixture
def env(tmp_path: Path):
    store = o.Store(tmp_path / "objects.json")
    base = tmp_path / "manifests"
    base.mkdir()
    return store, base, d.Controller(store, base)


def addon(store: o.Store, name: str) -> dict | None:
    return store.get(o.find_kind("Addon"), "kube-system", name)


def touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, (st.st_atime + 5, st.st_mtime + 5))


def test_an_applied_file_gets_an_addon_and_its_objects_the_objectset_marks(env) -> None:
    store, base, ctl = env
    f = base / "my-app.v2.yaml"
    f.write_text(APP)
    ctl.list_files(force=True)
    a = addon(store, "my-app")  # the name stops at the first period
    assert a is not None
    assert a["spec"]["source"] == str(f)
    assert a["spec"]["checksum"] == hashlib.sha256(APP.encode()).hexdigest()
    assert a["metadata"]["annotations"]["addon.k3s.cattle.io/gvks"] == (
        "/v1, Kind=Namespace;/v1, Kind=ConfigMap;apps/v1, Kind=Deployment;/v1, Kind=Service"
    )
    dep = store.get(o.find_kind("Deployment"), "app", "web")
    assert dep is not None
    assert dep["metadata"]["labels"][
        "objectset.rio.cattle.io/hash"
    ] == d.objectset_hash("my-app")
    ann = dep["metadata"]["annotations"]
    assert ann["objectset.rio.cattle.io/id"] == ""
    assert ann["objectset.rio.cattle.io/owner-gvk"] == "k3s.cattle.io/v1, Kind=Addon"
    assert ann["objectset.rio.cattle.io/owner-name"] == "my-app"
    assert ann["objectset.rio.cattle.io/owner-namespace"] == "kube-system"
    applied = json.loads(
        gzip.decompress(base64.b64decode(ann["objectset.rio.cattle.io/applied"] + "=="))
    )
    assert applied["metadata"]["name"] == "web" and applied["spec"] == {"replicas": 1}
    assert "ownerReferences" not in dep["metadata"]
    assert (
        store.get(o.find_kind("Service"), "default", "nons") is not None
    )  # adjustNamespace


def test_the_hash_is_k3s_s_and_the_one_prune_looks_for() -> None:
    from hydradeploy.deploy.prune import objectset_hash

    assert d.objectset_hash("coredns") == "bce283298811743a0386ab510f2f67ef74240c57"
    assert d.objectset_hash("hydra-apps-x") == objectset_hash("hydra-apps-x")


def test_objects_dropped_from_a_file_go_a_vanished_file_changes_nothing(env) -> None:
    store, base, ctl = env
    f = base / "app.yaml"
    f.write_text(APP)
    ctl.list_files(force=True)
    f.write_text(APP.split("---\napiVersion: apps/v1")[0])  # namespace + configmap only
    touch_later(f)
    ctl.list_files(force=False)
    assert store.get(o.find_kind("Deployment"), "app", "web") is None
    assert store.get(o.find_kind("ConfigMap"), "app", "cfg") is not None
    f.unlink()
    ctl.list_files(force=False)
    ctl.list_files(force=True)
    assert store.get(o.find_kind("ConfigMap"), "app", "cfg") is not None
    assert addon(store, "app") is not None


def test_skip_files_dotfiles_and_other_suffixes_are_not_applied(env) -> None:
    store, base, ctl = env
    for name in ("skipped.yaml", ".hidden.yaml", "notes.txt"):
        (base / name).write_text(APP)
    (base / "skipped.yaml.skip").write_text("")
    ctl.list_files(force=True)
    assert [a["metadata"]["name"] for a in store.list(o.find_kind("Addon"))] == []


def test_an_unchanged_file_is_not_reapplied_until_the_forced_pass(env) -> None:
    store, base, ctl = env
    (base / "app.yaml").write_text(APP)
    ctl.list_files(force=True)
    store.delete(o.find_kind("ConfigMap"), "app", "cfg")
    ctl.list_files(force=False)  # same mtime: skipped
    assert store.get(o.find_kind("ConfigMap"), "app", "cfg") is None
    ctl.list_files(force=True)  # k3s restarted
    assert store.get(o.find_kind("ConfigMap"), "app", "cfg") is not None


def test_statefulset_claims_outlive_the_statefulset(env) -> None:
    store, base, ctl = env
    (base / "db.yaml").write_text(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: pg, namespace: default}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: pg}}\n"
        "  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {}\n"
    )
    ctl.list_files(force=True)
    pvc = o.find_kind("PersistentVolumeClaim")
    assert [p["metadata"]["name"] for p in store.list(pvc)] == [
        "data-pg-0",
        "data-pg-1",
    ]
    assert store.list(pvc)[0]["metadata"]["labels"] == {"app": "pg"}
    store.delete(o.find_kind("StatefulSet"), "default", "pg")
    assert len(store.list(pvc)) == 2


def test_a_namespace_must_exist_and_its_deletion_takes_its_contents(env) -> None:
    store, _base, _ctl = env
    cm = o.find_kind("ConfigMap")
    with pytest.raises(o.ApiError, match='namespaces "nope" not found'):
        store.put(cm, {"metadata": {"name": "x", "namespace": "nope"}})
    store.put(o.find_kind("Namespace"), {"metadata": {"name": "tmp"}})
    store.put(cm, {"metadata": {"name": "x", "namespace": "tmp"}})
    store.delete(o.find_kind("Namespace"), "", "tmp")
    assert store.get(cm, "tmp", "x") is None


def test_rest_paths_and_label_selectors(env) -> None:
    store, base, ctl = env
    (base / "app.yaml").write_text(APP)
    ctl.list_files(force=True)
    sel = "objectset.rio.cattle.io%2Fhash%3D" + d.objectset_hash("app")
    code, body = store.handle(
        "GET", f"/apis/apps/v1/deployments?labelSelector={sel}", None
    )
    assert code == 200 and [i["metadata"]["name"] for i in body["items"]] == ["web"]
    code, body = store.handle("GET", "/api/v1/namespaces/app/configmaps/nope", None)
    assert code == 404 and body["message"] == 'configmaps "nope" not found'
    code, body = store.handle(
        "POST",
        "/api/v1/namespaces/app/configmaps",
        json.dumps({"metadata": {"name": "cfg"}}).encode(),
    )
    assert code == 409 and body["reason"] == "AlreadyExists"
    assert (
        store.handle("DELETE", "/apis/apps/v1/namespaces/app/deployments/web", None)[0]
        == 200
    )
    assert store.handle("GET", "/api/v1/nodes", None) is None  # nodes stay with k3s_sim


def test_link_manifests_replaces_links_and_leaves_stale_ones(
    tmp_path: Path, monkeypatch
) -> None:
    closure = tmp_path / "closure"
    (closure / "etc" / "tmpfiles.d").mkdir(parents=True)
    target = tmp_path / "manifests" / "hydra-a.yaml"
    stale = tmp_path / "manifests" / "hydra-old.yaml"
    stale.parent.mkdir()
    stale.symlink_to("/nix/store/old")
    (closure / d.TMPFILES_RULES).write_text(
        f"'L+' '{target}' '-' '-' '-' '-' @OUT@/k8s/hydra-a.yaml\n"
    )
    d.link_manifests(closure)
    assert os.readlink(target) == f"{closure}/k8s/hydra-a.yaml"
    assert os.readlink(stale) == "/nix/store/old"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("a=1", True), ("a==1,b=2", True), ("a!=1", False), ("a in (0,1)", True),
        ("a notin (0,1)", False), ("a in (0,1),b in (3)", False), ("c", False), ("!c", True),
    ],
)  # fmt: skip
def test_label_selectors_as_kubernetes_reads_them(
    selector: str, expected: bool
) -> None:
    assert o.matches({"a": "1", "b": "2"}, selector) is expected


@pytest.mark.parametrize(
    "argv",
    [["get", "nodes"], ["delete", "node", "w1"], ["label", "node", "w1", "a=b"],
     ["get", "--raw", "/readyz"], ["top", "pods"]],
)  # fmt: skip
def test_node_commands_are_left_to_k3s_cli(argv: list[str]) -> None:
    from hydradeploy.lab.guest import k3s_objects_cli

    assert k3s_objects_cli.kubectl(argv) is None
