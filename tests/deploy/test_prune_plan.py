"""The prune planner (deploy/prune.py) without a cluster: which Addons count as removed,
which objects are theirs, the deletion order, what is kept, and the commands run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hydradeploy.deploy import prune as p
from hydradeploy.deploy.remote import Result

BASE = p.MANIFESTS


def addon(name: str, source: str | None = None, gvks: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "k3s.cattle.io/v1",
        "kind": "Addon",
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "annotations": {p.GVK_ANNOTATION: gvks},
        },
        "spec": {"source": source or f"{BASE}/{name}.yaml", "checksum": "0" * 64},
    }


def obj(
    kind: str, name: str, ns: str = "", owner: str | None = None, **extra: Any
) -> dict[str, Any]:
    api = {
        "Deployment": "apps/v1", "StatefulSet": "apps/v1",
        "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    }.get(kind, "v1")  # fmt: skip
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    if owner:
        meta["labels"] = {p.LABEL_HASH: p.objectset_hash(owner)}
        meta["annotations"] = {
            p.ANN_ID: "", p.ANN_GVK: p.ADDON_GVK, p.ANN_NAME: owner, p.ANN_NAMESPACE: "kube-system",
        }  # fmt: skip
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def test_hash_is_the_one_k3s_puts_on_its_objects() -> None:
    # Values seen on live clusters (public cluster dumps): the coredns Deployment carries
    # objectset.rio.cattle.io/hash bce2832…, the local-storage StorageClass 183f35c….
    assert p.objectset_hash("coredns") == "bce283298811743a0386ab510f2f67ef74240c57"
    assert (
        p.objectset_hash("local-storage") == "183f35c65ffbc3064603f43f1580d8c68a2dabd4"
    )


def test_removed_addons_regular_files_rule_links_stale_links_and_missing_files() -> (
    None
):
    snap = p.Snapshot(
        files={
            f"{BASE}/coredns.yaml": (False, True),  # k3s's own packaged file
            f"{BASE}/hydra-apps-a.yaml": (
                True,
                True,
            ),  # named by the running generation
            f"{BASE}/hydra-apps-old.yaml": (
                True,
                True,
            ),  # link left by an older generation
        },
        rules=[f"{BASE}/hydra-apps-a.yaml"],
        addons=[
            addon("coredns"),
            addon("hydra-apps-a"),
            addon("hydra-apps-old"),
            addon("hydra-apps-gone"),  # file deleted
            addon("elsewhere", source="/etc/other/x.yaml"),  # not k3s's directory
        ],
    )
    assert [a["metadata"]["name"] for a in p.removed_addons(snap)] == [
        "hydra-apps-gone",
        "hydra-apps-old",
    ]
    # a link someone made by hand (not into /nix/store) is not NixOS's to judge
    snap.targets = {f"{BASE}/hydra-apps-old.yaml": "/srv/manifests/old.yaml"}
    assert [a["metadata"]["name"] for a in p.removed_addons(snap)] == [
        "hydra-apps-gone"
    ]
    snap.targets = {}
    # Without a rules file (not a NixOS-managed directory) a link counts while its target exists.
    snap.rules = None
    snap.files[f"{BASE}/hydra-apps-dangling.yaml"] = (True, False)
    snap.addons.append(addon("hydra-apps-dangling"))
    assert [a["metadata"]["name"] for a in p.removed_addons(snap)] == [
        "hydra-apps-dangling",
        "hydra-apps-gone",
    ]


def web_snapshot() -> p.Snapshot:
    owner = "hydra-apps-web"
    sts = obj(
        "StatefulSet", "db", "web", owner,
        spec={"replicas": 1, "volumeClaimTemplates": [{"metadata": {"name": "data"}}]},
    )  # fmt: skip
    return p.Snapshot(
        files={
            f"{BASE}/hydra-apps-web.yaml": (True, True),
            f"{BASE}/hydra-apps-keep.yaml": (True, True),
        },
        rules=[f"{BASE}/hydra-apps-keep.yaml"],
        addons=[addon(owner), addon("hydra-apps-keep")],
        owned={
            owner: [
                obj("Namespace", "web", owner=owner),
                obj("Secret", "web-secret", "web", owner),
                obj("ConfigMap", "web-config", "web", owner),
                obj("Service", "web", "web", owner),
                obj("Deployment", "web", "web", owner),
                sts,
                obj("CustomResourceDefinition", "widgets.example.io", owner=owner),
                # labelled with the hash but another owner named: not k3s's record of ours
                {
                    **obj("ConfigMap", "impostor", "web", owner),
                    "metadata": {
                        **obj("ConfigMap", "impostor", "web", owner)["metadata"],
                        "annotations": {p.ANN_NAME: "someone-else"},
                    },
                },
            ]
        },
        claims={
            "web": [
                obj("PersistentVolumeClaim", "data-db-0", "web"),
                obj(
                    "PersistentVolumeClaim", "data-db-7", "web"
                ),  # left by a scale-down
                obj(
                    "PersistentVolumeClaim", "data-other-0", "web"
                ),  # another StatefulSet's
            ]
        },
        contents={
            "web": [
                obj("ConfigMap", "kube-root-ca.crt", "web"),
                obj("ServiceAccount", "default", "web"),
                {
                    **obj("Pod", "web-abc", "web"),
                    "metadata": {
                        "name": "web-abc",
                        "namespace": "web",
                        "ownerReferences": [{"kind": "ReplicaSet"}],
                    },
                },
            ]
        },
    )


def rows(items: list[p.Item]) -> list[tuple[str, str, str]]:
    return [(i.kind, i.name, i.action) for i in items]


def test_plan_orders_workloads_services_config_data_namespaces_crds_addon() -> None:
    items = p.plan(web_snapshot(), include_data=True)
    assert rows(items) == [
        ("File", f"{BASE}/hydra-apps-web.yaml", "delete"),
        ("Deployment", "web", "delete"),
        ("StatefulSet", "db", "delete"),
        ("Service", "web", "delete"),
        ("ConfigMap", "web-config", "delete"),
        ("Secret", "web-secret", "delete"),
        ("PersistentVolumeClaim", "data-db-0", "delete"),
        ("PersistentVolumeClaim", "data-db-7", "delete"),
        ("Namespace", "web", "delete"),
        ("CustomResourceDefinition", "widgets.example.io", "delete"),
        ("Addon", "hydra-apps-web", "delete"),
    ]
    assert {i.file for i in items} == {f"{BASE}/hydra-apps-web.yaml"}
    assert [i.resource for i in items if i.kind in ("Deployment", "ConfigMap")] == [
        "deployment.apps",
        "configmap",
    ]


def test_without_include_data_claims_crds_their_namespace_and_the_addon_stay() -> None:
    items = p.plan(web_snapshot(), include_data=False)
    kept = {(k, n) for k, n, a in rows(items) if a == "keep"}
    assert kept == {
        ("PersistentVolumeClaim", "data-db-0"),
        ("PersistentVolumeClaim", "data-db-7"),
        ("CustomResourceDefinition", "widgets.example.io"),
        ("Namespace", "web"),  # deleting it would delete the kept claims
        ("Addon", "hydra-apps-web"),  # so a later --include-data still finds them
    }
    assert ("Deployment", "web", "delete") in rows(items)


def test_a_namespace_holding_foreign_objects_and_a_crd_with_other_resources_stay() -> (
    None
):
    snap = web_snapshot()
    snap.contents["web"].append(obj("ConfigMap", "made-by-hand", "web"))
    snap.instances["widgets.example.io"] = 2
    items = {(i.kind, i.name): i for i in p.plan(snap, include_data=True)}
    assert items[("Namespace", "web")].action == "keep"
    assert "ConfigMap/made-by-hand" in items[("Namespace", "web")].reason
    assert items[("CustomResourceDefinition", "widgets.example.io")].action == "keep"
    assert ("ConfigMap", "made-by-hand") not in items
    assert ("ConfigMap", "impostor") not in items


def test_nothing_removed_means_an_empty_plan() -> None:
    snap = web_snapshot()
    snap.rules = [*(snap.rules or []), f"{BASE}/hydra-apps-web.yaml"]
    assert p.plan(snap) == []


class FakeServer:
    """Answers the commands prune runs; records them."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[list[str]] = []
        self.inputs: list[Any] = []
        self.fail = fail

    def __call__(self, argv: Any, timeout: float, stdin: bytes | None = None) -> Result:
        argv = list(argv)
        self.calls.append(argv)
        said = json.loads(stdin) if stdin else None
        self.inputs.append(said)
        if self.fail and self.fail in " ".join(argv) + json.dumps(said):
            # kubectl goes on after a failed object and names the ones it deleted
            names = [i["metadata"]["name"] for i in (said or {}).get("items", [])
                     if self.fail not in json.dumps(i)]  # fmt: skip
            return Result(1, "".join(f'x "{n}" deleted\n' for n in names),
                          'Error from server (Forbidden): nope "x"')  # fmt: skip
        return Result(0, "", "")


def test_execute_deletes_stage_by_stage_and_keeps_the_addon_on_failure() -> None:
    items = p.plan(web_snapshot(), include_data=True)
    server = FakeServer()
    done = p.execute(server, items)
    assert all(i.done for i in done)
    assert server.calls[0] == ["rm", "-f", "--", f"{BASE}/hydra-apps-web.yaml"]
    assert all(
        c[:5] == ["k3s", "kubectl", "delete", "-f", "-"] for c in server.calls[1:]
    )
    stages = [[(i["kind"], i["metadata"].get("namespace", ""), i["metadata"]["name"])
               for i in body["items"]] for body in server.inputs[1:]]  # fmt: skip
    assert stages == [
        [("Deployment", "web", "web"), ("StatefulSet", "web", "db")],
        [("Service", "web", "web")],
        [("ConfigMap", "web", "web-config"), ("Secret", "web", "web-secret")],
        [("PersistentVolumeClaim", "web", "data-db-0"), ("PersistentVolumeClaim", "web", "data-db-7")],
        [("Namespace", "", "web")],
        [("CustomResourceDefinition", "", "widgets.example.io")],
        [("Addon", "kube-system", "hydra-apps-web")],
    ]  # fmt: skip
    assert server.inputs[1]["items"][0]["apiVersion"] == "apps/v1"
    assert server.inputs[-1]["items"][0]["apiVersion"] == "k3s.cattle.io/v1"

    failing = FakeServer(fail="web-secret")
    done = p.execute(failing, items)
    by_name = {(i.kind, i.name): i for i in done}
    assert by_name[("Secret", "web-secret")].done is False
    assert "Forbidden" in by_name[("Secret", "web-secret")].error
    assert by_name[("ConfigMap", "web-config")].done is True  # deleted in the same call
    assert by_name[("Addon", "hydra-apps-web")].done is False
    assert not any(
        "hydra-apps-web" in json.dumps(i)
        for i in failing.inputs[-1:]
        if i and i["items"][0]["kind"] == "Addon"
    )
    assert p.failed(done) == [
        by_name[("Secret", "web-secret")],
        by_name[("Addon", "hydra-apps-web")],
    ]


def test_gather_asks_by_k3s_records_only() -> None:
    owner = "hydra-apps-web"
    answers = {
        "find": f"L\tN\t{BASE}/hydra-apps-web.yaml\nF\tf\t{BASE}/coredns.yaml\n",
        "cat": "",
        "addons": json.dumps({"items": [addon(owner, gvks="/v1, Kind=ConfigMap;apps/v1, Kind=Deployment")]}),
        "persistentvolumeclaims": json.dumps({"items": []}),
        "configmap,deployment.apps": json.dumps(
            {"items": [obj("ConfigMap", "c", "web", owner), obj("ConfigMap", "x", "web", "other")]}
        ),
    }  # fmt: skip
    calls: list[list[str]] = []

    def run(argv: Any, timeout: float, stdin: bytes | None = None) -> Result:
        argv = list(argv)
        calls.append(argv)
        assert timeout > 0
        key = argv[0] if argv[0] in ("find", "cat") else argv[3].split(".k3s")[0]
        if argv[:2] == ["find", "-P"]:
            return Result(
                0, f"{BASE}/hydra-apps-web.yaml\t/nix/store/gone-web.yaml\n", ""
            )
        return Result(0, answers[key], "")

    snap = p.gather(run)
    assert snap.targets == {f"{BASE}/hydra-apps-web.yaml": "/nix/store/gone-web.yaml"}
    assert calls[4] == [
        "k3s", "kubectl", "get", "configmap,deployment.apps", "-A",
        "-l", f"{p.LABEL_HASH} in ({p.objectset_hash(owner)})", "-o", "json",
    ]  # fmt: skip
    assert [o["metadata"]["name"] for o in snap.owned[owner]] == ["c"]
    assert snap.files == {  # a dangling link and k3s's own regular file
        f"{BASE}/hydra-apps-web.yaml": (True, False),
        f"{BASE}/coredns.yaml": (False, True),
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"'L+' '{BASE}/hydra-a.yaml' '-' '-' '-' '-' /nix/store/abc-a.yaml", [f"{BASE}/hydra-a.yaml"]),
        ("'L+' '/var/lib/rancher/k3s/agent/images/x' '-' '-' '-' '-' /nix/store/i", []),
        ("# comment", []),
    ],
)  # fmt: skip
def test_read_rules_takes_the_paths_of_the_manifest_links(
    line: str, expected: list[str]
) -> None:
    assert p.read_rules(lambda argv, t: Result(0, line + "\n", "")) == expected
    assert p.read_rules(lambda argv, t: Result(1, "", "No such file")) is None


def test_kept_claims_are_labelled_before_their_statefulset_goes_and_found_again() -> (
    None
):
    owner = "hydra-apps-web"
    items = p.plan(web_snapshot(), include_data=False)
    server = FakeServer()
    p.execute(server, items)
    label = server.calls[0]
    assert label[:4] == ["k3s", "kubectl", "label", "persistentvolumeclaim"]
    assert label[4:] == ["data-db-0", "data-db-7", "-n", "web",
                         f"{p.LABEL_KEPT}={p.objectset_hash(owner)}", "--overwrite"]  # fmt: skip
    deleting_sts = next(
        n
        for n, body in enumerate(server.inputs)
        if body and "StatefulSet" in json.dumps(body)
    )
    assert server.calls.index(label) == 0 < deleting_sts

    # later, the StatefulSet gone: the labelled claims still belong to the removed Addon
    snap = web_snapshot()
    snap.owned[owner] = [o for o in snap.owned[owner] if o["kind"] == "Namespace"]
    snap.claims = {}
    claim = obj("PersistentVolumeClaim", "data-db-0", "web")
    claim["metadata"]["labels"] = {p.LABEL_KEPT: p.objectset_hash(owner)}
    stranger = obj("PersistentVolumeClaim", "other", "web")
    stranger["metadata"]["labels"] = {p.LABEL_KEPT: p.objectset_hash("someone-else")}
    snap.kept[owner] = [claim, stranger]
    again = p.plan(snap, include_data=True)
    assert rows(again) == [
        ("File", f"{BASE}/hydra-apps-web.yaml", "delete"),
        ("PersistentVolumeClaim", "data-db-0", "delete"),
        ("Namespace", "web", "delete"),
        ("Addon", owner, "delete"),
    ]


def test_a_failed_label_keeps_the_statefulset() -> None:
    items = p.plan(web_snapshot(), include_data=False)
    done = {i.kind: i for i in p.execute(FakeServer(fail="label"), items)}
    assert (
        done["StatefulSet"].done is False and "labelling" in done["StatefulSet"].error
    )
    assert done["Deployment"].done is True


def test_prune_waits_for_k3s_to_apply_new_files_then_deletes(monkeypatch) -> None:
    new = f"{BASE}/hydra-apps-new.yaml"
    pending = web_snapshot()
    pending.files[new] = (True, True)
    pending.rules = [*(pending.rules or []), new]
    applied = web_snapshot()
    applied.files[new] = (True, True)
    applied.rules = list(pending.rules)
    applied.addons.append(addon("hydra-apps-new"))
    assert p.not_applied(pending) == [new] and p.not_applied(applied) == []

    snaps = [pending, pending, applied]
    monkeypatch.setattr(p, "gather", lambda run: snaps.pop(0))
    slept: list[float] = []
    server = FakeServer()
    items = p.prune(server, wait=60, sleep=slept.append)
    assert len(slept) == 2 and not snaps
    assert any(i.kind == "Deployment" and i.done for i in items)

    monkeypatch.setattr(p, "gather", lambda run: pending)
    with pytest.raises(
        p.PruneError, match="k3s has not applied .*hydra-apps-new.yaml yet"
    ):
        p.prune(FakeServer(), wait=0)
    assert p.prune(FakeServer(), dry_run=True)  # a dry run never waits nor refuses


def test_stale_links_on_another_server_are_found_by_its_own_rules() -> None:
    web, keep = f"{BASE}/hydra-apps-web.yaml", f"{BASE}/hydra-apps-keep.yaml"
    answers = {
        ("find", "-L"): f"L\tf\t{web}\nL\tf\t{keep}\n",
        (
            "find",
            "-P",
        ): f"{web}\t/nix/store/a-web.yaml\n{keep}\t/nix/store/b-keep.yaml\n",
        ("cat",): f"'L+' '{keep}' '-' '-' '-' '-' /nix/store/b-keep.yaml\n",
    }
    calls: list[list[str]] = []

    def run(argv: Any, timeout: float, stdin: bytes | None = None) -> Result:
        calls.append(list(argv))
        for key, out in answers.items():
            if tuple(argv[: len(key)]) == key:
                return Result(0, out, "")
        return Result(0, "", "")

    rows = p.prune_links(run, "srv2", {web, keep, f"{BASE}/absent.yaml"}, dry_run=True)
    assert [(r.kind, r.name, r.reason) for r in rows] == [
        ("File", web, "stale link on srv2")
    ]
    assert not any(c[0] == "rm" for c in calls)
    done = p.prune_links(run, "srv2", {web}, dry_run=False)
    assert calls[-1] == ["rm", "-f", "--", web] and done[0].done is True
