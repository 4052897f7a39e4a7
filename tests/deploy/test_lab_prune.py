"""`hydradeploy prune` and `deploy --prune` against the lab: a server whose closures carry
k8s/ manifests (lab closure --manifests), applied by the simulated k3s deploy controller
as k3s does (docs/prune.md). The tests run in order and share the lab's state.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydradeploy.lab import HostSpec

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# a short stability window: the path runs, the suite stays within CI\'s time
FAST = ["--confirm-timeout", "5", "--check-timeout", "20", "--stability-window", "2"]
MANIFESTS = "/var/lib/rancher/k3s/server/manifests"

KEEP = """\
apiVersion: v1
kind: Namespace
metadata: {name: keep}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: keep-config, namespace: keep}
data: {a: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: keep, namespace: keep}
spec:
  selector: {matchLabels: {app: keep}}
  template:
    metadata: {labels: {app: keep}}
    spec: {containers: [{name: keep, image: busybox}]}
"""

WEB = """\
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: web}
data: {b: "2"}
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret, namespace: web}
stringData: {token: not-a-real-one}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""
WEB_OBJECTS = {
    ("Namespace", "", "web"),
    ("ConfigMap", "web", "web-config"),
    ("Secret", "web", "web-secret"),
    ("Deployment", "web", "web"),
    ("Service", "web", "web"),
}

DB = """\
apiVersion: v1
kind: Namespace
metadata: {name: db}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: pg, namespace: db}
spec:
  replicas: 1
  serviceName: pg
  selector: {matchLabels: {app: pg}}
  template:
    metadata: {labels: {app: pg}}
    spec: {containers: [{name: pg, image: postgres}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


@pytest.fixture(scope="module")
def lab(lab_factory):
    # two servers: both get the manifests, as the hydra module gives them to every server
    return lab_factory([HostSpec("srv", "server"), HostSpec("srv2", "server")])


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """k8s/ trees: keep+web, keep alone, keep+db."""
    out = {}
    for name, files in {
        "both": {"keep.yaml": KEEP, "web.yaml": WEB},
        "keep": {"keep.yaml": KEEP},
        "db": {"keep.yaml": KEEP, "db.yaml": DB},
    }.items():
        root = tmp_path_factory.mktemp(name)
        (root / "apps").mkdir()
        for fname, text in files.items():
            (root / "apps" / fname).write_text(text)
        out[name] = root
    return out


@pytest.fixture(scope="module")
def state_home(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


@pytest.fixture
def hd(lab, state_home):
    """`hydradeploy --inventory LAB …` → (exit status, JSON or None, stdout, stderr)."""

    def run(*args: str):
        env = {**os.environ, "XDG_STATE_HOME": str(state_home)}
        res = subprocess.run(
            [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path), *args],
            capture_output=True, text=True, timeout=240, env=env, check=False,
        )  # fmt: skip
        assert "Traceback" not in res.stderr, res.stderr
        data = (
            json.loads(res.stdout)
            if "--output" in args and res.stdout.strip()
            else None
        )
        return res.returncode, data, res.stdout, res.stderr

    return run


def kubectl(lab, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.run("srv", ["k3s", "kubectl", *args])


def exists(lab, kind: str, namespace: str, name: str) -> bool:
    ns = ["-n", namespace] if namespace else []
    res = kubectl(lab, "get", kind, name, *ns, "-o", "json")
    assert res.returncode == 0 or "NotFound" in res.stderr, res.stderr
    return res.returncode == 0


def wait_api(lab, timeout: float = 30) -> None:
    """Until the restarted k3s answers again (its API is down while it starts)."""
    deadline = time.monotonic() + timeout
    while kubectl(lab, "get", "namespace", "kube-system").returncode != 0:
        assert time.monotonic() < deadline, "k3s API not back after a restart"
        time.sleep(0.3)


def wait_applied(lab, tree: Path, timeout: float = 45) -> None:
    """Until k3s has an Addon with each file's checksum: it applies at start, and changed
    files at its next pass (every 15 s) when the activation did not restart it."""
    want = {
        f"hydra-apps-{f.stem}": hashlib.sha256(f.read_bytes()).hexdigest()
        for f in (tree / "apps").iterdir()
    }
    deadline = time.monotonic() + timeout
    while True:
        res = kubectl(lab, "get", "addons", "-A", "-o", "json")
        have = {
            a["metadata"]["name"]: a["spec"].get("checksum")
            for a in json.loads(res.stdout or "{}").get("items", [])
        }
        if all(have.get(n) == c for n, c in want.items()):
            return
        assert time.monotonic() < deadline, f"k3s did not apply {want} (has {have})"
        time.sleep(1)


def deploy(lab, hd, tree: Path, *extra: str):
    closures = [f"{h}={lab.closure(h, manifests=tree)}" for h in ("srv", "srv2")]
    code, data, out, err = hd(
        "deploy", "srv", "srv2", "--closure", closures[0], "--closure", closures[1],
        *FAST, "--output", "json", *extra,
    )  # fmt: skip
    assert code == 0, (out, err)
    assert [h["outcome"] for h in data["hosts"]] == ["deployed", "deployed"]
    wait_applied(lab, tree)
    return data


def rows(data: list[dict]) -> set[tuple[str, str, str]]:
    return {
        (r["kind"], r["namespace"], r["name"])
        for r in data
        if r["kind"] not in ("Addon", "File")
    }


def test_a_removed_file_keeps_its_objects_as_in_k3s(lab, hd, trees) -> None:
    deploy(lab, hd, trees["both"])
    for kind, ns, name in WEB_OBJECTS | {("Deployment", "keep", "keep")}:
        assert exists(lab, kind, ns, name), (kind, ns, name)
    web = json.loads(
        kubectl(
            lab, "get", "addon", "hydra-apps-web", "-n", "kube-system", "-o", "json"
        ).stdout
    )
    assert web["spec"]["source"] == f"{MANIFESTS}/hydra-apps-web.yaml"
    assert len(web["spec"]["checksum"]) == 64
    assert (
        "apps/v1, Kind=Deployment"
        in web["metadata"]["annotations"]["addon.k3s.cattle.io/gvks"]
    )
    dep = json.loads(
        kubectl(lab, "get", "deployment", "web", "-n", "web", "-o", "json").stdout
    )
    ann = dep["metadata"]["annotations"]
    assert ann["objectset.rio.cattle.io/owner-name"] == "hydra-apps-web"
    assert ann["objectset.rio.cattle.io/owner-gvk"] == "k3s.cattle.io/v1, Kind=Addon"
    assert "objectset.rio.cattle.io/applied" in ann
    assert "ownerReferences" not in dep["metadata"]

    deploy(lab, hd, trees["keep"])
    # k3s deletes nothing when a file goes; NixOS's L+ link of the old generation stays.
    for kind, ns, name in WEB_OBJECTS:
        assert exists(lab, kind, ns, name), (kind, ns, name)
    assert exists(lab, "addon", "kube-system", "hydra-apps-web")
    for server in ("srv", "srv2"):
        link = lab.run(server, ["test", "-L", f"{MANIFESTS}/hydra-apps-web.yaml"])
        assert link.returncode == 0, server


def test_dry_run_lists_exactly_the_removed_files_objects(lab, hd) -> None:
    made = kubectl(
        lab, "create", "configmap", "by-hand", "-n", "keep", "--from-literal=x=y"
    )
    assert made.returncode == 0, made.stderr
    code, data, _out, err = hd("prune", "--dry-run", "--output", "json")
    assert code == 0, err
    assert rows(data) == WEB_OBJECTS
    assert {r["file"] for r in data} == {f"{MANIFESTS}/hydra-apps-web.yaml"}
    assert {(r["kind"], r["name"]) for r in data if r["kind"] in ("Addon", "File")} == {
        ("Addon", "hydra-apps-web"),
        ("File", f"{MANIFESTS}/hydra-apps-web.yaml"),
    }
    assert all(r["action"] == "delete" for r in data)
    assert sorted(r["reason"] for r in data if r["kind"] == "File") == [
        "stale link of an older generation",
        "stale link on srv2",
    ]
    # a dry run changes nothing
    assert all(exists(lab, *o) for o in WEB_OBJECTS)
    code, _data, out, _err = hd("prune", "--dry-run")
    assert code == 0 and "web-secret" in out and "hydra-apps-web" in out


def test_prune_deletes_them_and_nothing_else(lab, hd) -> None:
    code, data, _out, err = hd("prune", "--output", "json")
    assert code == 0, err
    assert rows(data) == WEB_OBJECTS and all(r["done"] for r in data)
    for obj in WEB_OBJECTS:
        assert not exists(lab, *obj), obj
    assert not exists(lab, "addon", "kube-system", "hydra-apps-web")
    for server in ("srv", "srv2"):  # the stale link goes on every server
        link = lab.run(server, ["test", "-L", f"{MANIFESTS}/hydra-apps-web.yaml"])
        assert link.returncode == 1, server
    for kind, ns, name in [("configmap", "keep", "by-hand"), ("configmap", "keep", "keep-config"),
                           ("deployment", "keep", "keep"), ("namespace", "", "keep"),
                           ("addon", "kube-system", "hydra-apps-keep"),
                           ("addon", "kube-system", "coredns")]:  # fmt: skip
        assert exists(lab, kind, ns, name), (kind, ns, name)
    # k3s restarted: the file is gone for good, so nothing comes back
    assert lab.run("srv", ["systemctl", "restart", "k3s"]).returncode == 0
    wait_api(lab)
    assert not exists(lab, "namespace", "", "web")
    code, data, _out, err = hd("prune", "--dry-run", "--output", "json")
    assert (code, data) == (0, []), err
    code, _data, out, err = hd("prune")
    assert code == 0 and "nothing to prune" in out, err


def test_deploy_prune_in_one_step_keeps_statefulset_claims(
    lab, hd, trees, state_home
) -> None:
    deploy(lab, hd, trees["db"])
    assert exists(lab, "pvc", "db", "data-pg-0")
    data = deploy(lab, hd, trees["keep"], "--prune")
    pruned = {(r["kind"], r["name"]): r for r in data["pruned"]}
    assert pruned[("StatefulSet", "pg")]["done"] is True
    assert pruned[("PersistentVolumeClaim", "data-pg-0")]["action"] == "keep"
    assert pruned[("Namespace", "db")]["action"] == "keep"  # it holds the claim
    assert pruned[("Addon", "hydra-apps-db")]["action"] == "keep"
    assert not exists(lab, "statefulset", "db", "pg")
    assert exists(lab, "pvc", "db", "data-pg-0")
    record = (state_home / "hydradeploy" / "deploys.jsonl").read_text().splitlines()[-1]
    assert {r["name"] for r in json.loads(record)["pruned"]} >= {"pg", "data-pg-0"}

    code, data, _out, err = hd("prune", "--include-data", "--output", "json")
    assert code == 0, err
    assert {(r["kind"], r["name"]) for r in data if r["done"]} == {
        ("PersistentVolumeClaim", "data-pg-0"), ("Namespace", "db"), ("Addon", "hydra-apps-db"),
    }  # fmt: skip
    assert not exists(lab, "pvc", "db", "data-pg-0")
    assert exists(lab, "deployment", "keep", "keep")
    code, data, _out, err = hd("prune", "--dry-run", "--output", "json")
    assert (code, data) == (0, []), err


def test_prune_refuses_an_agent_and_names_it(lab, hd) -> None:
    code, _data, _out, err = hd("prune", "--server", "nosuch")
    assert code == 2 and "nosuch" in err
