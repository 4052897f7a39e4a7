"""Issue 17: the emitter decides placement first, then builds each part of a pod by a
pure function of the model and that placement (convert/parts.py). These tests call the
part builders directly, in any order, and check that none of them changes its inputs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import click
import pytest
from convert_helpers import validate_strict
from hydradeploy.convert import cli, parts
from hydradeploy.convert.emit import ContainerResult, Conversion, place, pod_groups
from hydradeploy.convert.model import Container, Mount, Port, Source
from hydradeploy.convert.parts import EmitOptions, Placement, Pod

REPO = Path(__file__).resolve().parents[2]


def _pod(*members: Container, placement: Placement | None = None, **kw: Any) -> Pod:
    source = Source(
        "compose", ["stack.yml"], list(members), host=kw.pop("host", "hydra-ai")
    )
    names = {c.source_name: c.source_name for c in members}
    return Pod(
        members=members,
        source=source,
        opts=EmitOptions(namespace="apps", host=source.host),
        placement=placement or place(list(members), set(), None),
        names=names,
        by_source={c.source_name: c for c in members},
        **kw,
    )


def _web() -> Container:
    return Container(
        "web",
        "stack.yml",
        image="nginx:1.27",
        environment={"TZ": "UTC", "DB_PASSWORD": "hunter22"},
        ports=[Port(80, "TCP", 8080), Port(443, "TCP", None, random_host_port=True)],
        mounts=[
            Mount("bind", "/etc/nginx", "/srv/nginx", read_only=True),
            Mount("volume", "/data", "web-data"),
        ],
    )


def test_placement_first_then_parts_read_it() -> None:
    c = _web()
    placement = place([c], set(), None)
    assert placement.workload == "StatefulSet"  # owns a named volume
    assert placement.pin == ("hostPath /srv/nginx",)
    assert placement.recreate == ("hostPath",)
    selector, notes = parts.pin(_pod(c, placement=placement))
    assert selector == {"kubernetes.io/hostname": "hydra-ai"}
    assert [n.key for n in notes] == ["nodeSelector"]
    # the same placement without --host: not pinned, and the note says so
    selector, notes = parts.pin(_pod(c, placement=placement, host=None))
    assert selector is None and notes[0].kind == "warning"


def test_each_part_is_pure_and_order_free() -> None:
    """Every part, called in reverse order and twice, gives the same result and leaves
    the Pod (the model and the decisions) as it was."""
    pod = _pod(_web())
    before = copy.deepcopy(pod)
    calls = [
        lambda: parts.restart_notes(pod.primary, pod.placement),
        lambda: parts.workload(pod, {"containers": []}, []),
        lambda: parts.services(pod),
        lambda: parts.pod_spec(pod, [], [], []),
        lambda: parts.wait_containers(pod.primary, pod),
        lambda: parts.container(pod.primary, pod),
        lambda: parts.volumes(pod.primary, "web", pod, frozenset({"etc-nginx"})),
        lambda: parts.environment(pod.primary, "web", pod),
        lambda: parts.resources(pod.primary, pod.source, pod.opts),
    ]
    first = [call() for call in reversed(calls)]
    second = [call() for call in calls]
    assert first == list(reversed(second))
    assert pod == before


def test_services_part() -> None:
    svc = parts.services(_pod(_web()))
    by_name = {d["metadata"]["name"]: d for d in svc.docs}
    assert sorted(by_name) == ["web", "web-lb", "web-nodeport"]
    assert by_name["web"]["spec"]["clusterIP"] == "None"  # StatefulSet: headless
    assert by_name["web-lb"]["spec"]["ports"] == [
        {"name": "tcp-8080", "port": 8080, "targetPort": 80, "protocol": "TCP"}
    ]
    assert svc.published == (("LoadBalancer", 8080, "TCP"),)
    assert svc.load_balancer
    for doc in svc.docs:
        validate_strict(doc)


def test_volumes_part_takes_names_the_pod_already_uses() -> None:
    pod = _pod(_web())
    vols = parts.volumes(pod.primary, "web", pod, frozenset({"etc-nginx"}))
    assert [m["name"] for m in vols.mounts] == ["etc-nginx-2", "web-data"]
    assert [v["name"] for v in vols.volumes] == ["etc-nginx-2"]  # + the claim template
    assert vols.taken == {"etc-nginx", "etc-nginx-2", "web-data"}
    assert [c["metadata"]["name"] for c in vols.claims] == [
        "web-data"
    ]  # claim template
    # the same container in a Job: its own claim, named after the pod
    job = _pod(
        _web(), placement=Placement("Job", restart_policy="Never", backoff_limit=0)
    )
    claims = parts.volumes(job.primary, "web", job).claims
    assert [c["metadata"]["name"] for c in claims] == ["web-data-web"]


def test_environment_part_moves_secrets_out() -> None:
    pod = _pod(_web())
    env = parts.environment(pod.primary, "web", pod)
    assert {"name": "TZ", "value": "UTC"} in env.env
    assert list(env.secrets) == ["apps/web-env.yaml"]
    assert env.secrets["apps/web-env.yaml"]["stringData"] == {"DB_PASSWORD": "hunter22"}
    assert "hunter22" not in repr(env.env)


def test_workload_part_follows_placement() -> None:
    c = Container("app", "stack.yml", image="app:1", ports=[Port(80)])
    spec = {"containers": [{"name": "app", "image": "app:1"}]}
    rolling, _ = parts.workload(_pod(c), spec, [])
    assert rolling["kind"] == "Deployment"
    assert rolling["spec"]["strategy"] == {"type": "RollingUpdate"}
    recreate, notes = parts.workload(
        _pod(c, placement=Placement("Deployment", recreate=("GPU",))), spec, []
    )
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}
    assert [n.key for n in notes] == ["strategy"]
    job, _ = parts.workload(
        _pod(c, placement=Placement("Job", backoff_limit=2)), spec, []
    )
    assert job["kind"] == "Job" and job["spec"]["backoffLimit"] == 2


def test_container_part_of_a_pod_member_uses_its_own_name() -> None:
    vpn = Container(
        "vpn", "stack.yml", image="gluetun:3", ports=[Port(8080, "TCP", 8080)]
    )
    torrent = Container("torrent", "stack.yml", image="qbt:4", network_peer="vpn")
    pod = _pod(vpn, torrent)
    part = parts.container(torrent, pod)
    assert part.container["name"] == "torrent"
    built = parts.build_pod(pod)
    assert [n.key for n in built.notes["torrent"]] == ["network_mode"]
    workload = built.docs[-1]
    assert [c["name"] for c in workload["spec"]["template"]["spec"]["containers"]] == [
        "vpn",
        "torrent",
    ]


def test_pod_groups_do_not_depend_on_order_nor_change_the_model() -> None:
    """A container whose network peer is missing runs alone; those naming it join it —
    whichever comes first in the source (the old emitter cleared `network_peer` on the
    model while grouping, so the order decided)."""

    def source(order: list[str]) -> Source:
        made = {
            "a": Container("a", "s.yml", image="x", network_peer="b"),
            "b": Container("b", "s.yml", image="x", network_peer="gone"),
        }
        return Source("compose", ["s.yml"], [made[n] for n in order])

    for order in (["a", "b"], ["b", "a"]):
        src = source(order)
        groups, notes = pod_groups(src)
        assert {k: [c.source_name for c in v] for k, v in groups.items()} == {
            "b": ["b", "a"]
        }
        assert [n.message.split(":")[0] for n in notes] == ["b"]
        assert [c.network_peer for c in src.containers] == [
            {"a": "b", "b": "gone"}[n] for n in order
        ]


def test_cli_reads_the_typed_pin_not_the_note_text(tmp_path: Path) -> None:
    """The CLI's inventory check asks ContainerResult.pinned_node, not the notes."""
    inv = REPO / "hosts" / "inventory.toml"
    if not inv.is_file():
        pytest.skip(f"no inventory at {inv}")
    ctx = click.Context(click.Command("x"), obj={"inventory_path": inv})
    source = Source("podman", ["c.json"], [], host="ghost")
    pinned = ContainerResult("app", "app", "c.json", "Deployment", "apps/app.yaml")
    conv = Conversion("apps", {}, {}, [pinned], [])
    assert cli._inventory_problems(ctx, source, conv) == []
    pinned.pinned_node = "ghost"
    (line,) = cli._inventory_problems(ctx, source, conv)
    assert "--host 'ghost' is not a k3s node" in line
