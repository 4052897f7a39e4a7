"""Unit tests of the inventory: Python validation rules and the loader.

The same rules are implemented in Nix (modules/lib/inventory.nix); tests/nix checks that
both agree on every case file. Here: the rules one by one, the typed model, the loader's
errors, and the example inventories of the repository.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hydradeploy.errors import UserError
from hydradeploy.inventory import check_file, load_inventory, node_labels, validate
from hydradeploy.inventory_schema import RESERVED_LABELS, RESERVED_TAINTS, ReservedLabel
from hydradeploy.kube_names import is_dns1123_label, node_label_error, parse_taint

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "hosts" / "inventory.toml"
HA = REPO / "hosts" / "examples" / "ha-cluster.toml"

BASE: dict[str, Any] = {
    "cluster": {"name": "c"},
    "storage": {"nas": {"address": "10.0.0.9", "exports": ["/srv"]}},
    "hosts": {
        "s1": {"address": "10.0.0.1", "role": "server", "cluster_init": True},
        "a1": {"address": "10.0.0.2", "role": "agent"},
    },
}


def issues_of(mutate: Any) -> set[tuple[str, str]]:
    data = copy.deepcopy(BASE)
    mutate(data)
    return {(i.code, i.path) for i in validate(data)}


def test_base_is_valid() -> None:
    assert validate(copy.deepcopy(BASE)) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(extra=1), {("unknown-key", "extra")}),
        (lambda d: d["hosts"]["a1"].update(gpu=[]), {("unknown-key", "hosts.a1.gpu")}),
        (lambda d: d["hosts"]["a1"].pop("role"), {("missing-field", "hosts.a1.role")}),
        (
            lambda d: d.pop("cluster"),
            {("missing-field", "cluster"), ("missing-field", "cluster.name")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(role="worker"),
            {("bad-value", "hosts.a1.role")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(address="10.0.0.256"),
            {("bad-value", "hosts.a1.address")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(address=5),
            {("wrong-type", "hosts.a1.address")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(cluster_init=1),
            {("wrong-type", "hosts.a1.cluster_init")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(cluster_init=True),
            {
                ("cluster-init-not-server", "hosts.a1.cluster_init"),
                ("many-cluster-init", "hosts"),
            },
        ),
        (
            lambda d: d["hosts"]["s1"].pop("cluster_init"),
            {("no-cluster-init", "hosts")},
        ),
        (
            lambda d: d["hosts"]["s1"].update(role="agent"),
            {
                ("cluster-init-not-server", "hosts.s1.cluster_init"),
                ("agent-without-server", "hosts.s1"),
                ("agent-without-server", "hosts.a1"),
            },
        ),
        (
            lambda d: d["hosts"]["a1"].update(address="10.0.0.1"),
            {
                ("duplicate-address", "hosts.s1.address"),
                ("duplicate-address", "hosts.a1.address"),
            },
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                microvms=[{"name": "s1", "address": "10.0.0.3"}]
            ),
            {
                ("duplicate-name", "hosts.s1"),
                ("duplicate-name", "hosts.a1.microvms.0.name"),
            },
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                microvms=[{"name": "nas", "address": "10.0.0.9"}]
            ),
            {
                ("duplicate-name", "storage.nas"),
                ("duplicate-name", "hosts.a1.microvms.0.name"),
                ("duplicate-address", "storage.nas.address"),
                ("duplicate-address", "hosts.a1.microvms.0.address"),
            },
        ),
        (
            lambda d: d["hosts"].update(Bad={"address": "10.0.0.7", "role": "agent"}),
            {("bad-name", "hosts.Bad")},
        ),
        (
            lambda d: d["cluster"].update(flannel_backend="calico"),
            {("bad-value", "cluster.flannel_backend")},
        ),
        (
            lambda d: d["cluster"].update(disable=["traefik", "kube-proxy"]),
            {("bad-value", "cluster.disable.1")},
        ),
        (
            lambda d: d["cluster"].update(cluster_cidr="10.42.0.1/16"),
            {("bad-value", "cluster.cluster_cidr")},
        ),
        (
            lambda d: d["cluster"].update(api_endpoint="10.0.0.1:6443"),
            {("bad-value", "cluster.api_endpoint")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                gpus=[{"vendor": "intel", "model": "Arc", "count": 1}]
            ),
            {("bad-value", "hosts.a1.gpus.0.vendor")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                gpus=[{"vendor": "amd", "model": "x", "count": 0}]
            ),
            {("bad-value", "hosts.a1.gpus.0.count")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                nfs=[{"server": "nas", "export": "/other", "mountpoint": "/m"}]
            ),
            {("unknown-export", "hosts.a1.nfs.0.export")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                nfs=[{"server": "nope", "export": "/srv", "mountpoint": "/m"}]
            ),
            {("unknown-storage", "hosts.a1.nfs.0.server")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                nfs=[{"server": 1, "export": 2, "mountpoint": "m"}]
            ),
            {
                ("wrong-type", "hosts.a1.nfs.0.server"),
                ("wrong-type", "hosts.a1.nfs.0.export"),
                ("bad-value", "hosts.a1.nfs.0.mountpoint"),
            },
        ),
        (
            lambda d: d["hosts"]["a1"].update(taints=[7, "gpu:Sometimes"]),
            {("wrong-type", "hosts.a1.taints.0"), ("bad-taint", "hosts.a1.taints.1")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                labels={"node-role.kubernetes.io/gpu": "true"}
            ),
            {("reserved-label", "hosts.a1.labels.node-role.kubernetes.io/gpu")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(rocm_gfx_version="gfx1103"),
            {("bad-value", "hosts.a1.rocm_gfx_version")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(ssh={"port": 0}),
            {("bad-value", "hosts.a1.ssh.port")},
        ),
        (lambda d: d.update(hosts={}), {("no-hosts", "hosts")}),
        (
            lambda d: d["hosts"]["a1"].update(
                taints=["gpu=a:NoSchedule", "gpu=b:NoSchedule", "gpu:NoExecute"]
            ),
            {("bad-taint", "hosts.a1.taints.1")},
        ),
        (
            lambda d: d["hosts"]["a1"].update(
                nfs=[
                    {"server": "nas", "export": "/srv", "mountpoint": "/m"},
                    {"server": "nas", "export": "/srv", "mountpoint": "/m"},
                ]
            ),
            {
                ("duplicate-mountpoint", "hosts.a1.nfs.0.mountpoint"),
                ("duplicate-mountpoint", "hosts.a1.nfs.1.mountpoint"),
            },
        ),
    ],
)
def test_rule(mutate: Any, expected: set[tuple[str, str]]) -> None:
    assert issues_of(mutate) == expected


def test_duplicates_do_not_depend_on_table_order() -> None:
    a = copy.deepcopy(BASE)
    a["hosts"]["a1"]["address"] = "10.0.0.1"
    b = copy.deepcopy(a)
    b["hosts"] = dict(reversed(list(b["hosts"].items())))
    assert {(i.code, i.path) for i in validate(a)} == {
        (i.code, i.path) for i in validate(b)
    }


def test_issue_paths_point_at_the_original_list_index() -> None:
    got = issues_of(lambda d: d["hosts"]["a1"].update(tags=[1, "Bad"]))
    assert got == {("wrong-type", "hosts.a1.tags.0"), ("bad-value", "hosts.a1.tags.1")}


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("hydra.io/gpu", "true", True),
        ("node.kubernetes.io/instance-type", "x", True),
        ("topology.kubernetes.io/zone", "a", True),
        ("kubelet.kubernetes.io/anything", "a", True),
        ("node-role.kubernetes.io/worker", "", False),  # NodeRestriction
        ("kubernetes.io/role", "gpu", False),
        ("example.k8s.io/x", "y", False),
        ("hydra.io/x", "a" * 64, False),
        ("hydra.io/x", "-x", False),
        ("UPPER.io/x", "y", False),
        ("a" * 64, "y", False),
        # A trailing newline must not slip through a `$` anchor (Nix's builtins.match
        # rejects it; both sides must agree).
        ("hydra.io/x\n", "y", False),
        ("hydra.io/x", "y\n", False),
    ],
)
def test_node_labels_kubernetes_would_accept(key: str, value: str, ok: bool) -> None:
    assert (node_label_error(key, value) is None) is ok


def test_names_with_a_trailing_newline_are_not_dns_labels() -> None:
    assert is_dns1123_label("abc")
    assert not is_dns1123_label("abc\n")


def test_taint_forms() -> None:
    assert parse_taint("nvidia.com/gpu=present:NoSchedule") == (
        "nvidia.com/gpu",
        "present",
        "NoSchedule",
    )
    assert parse_taint("dedicated:NoExecute") == ("dedicated", "", "NoExecute")
    for bad in ("gpu=true", "gpu:Never", "bad key:NoSchedule", ":NoSchedule"):
        with pytest.raises(ValueError):
            parse_taint(bad)


def test_loader_types_the_example_cluster() -> None:
    inv = load_inventory(EXAMPLE)
    assert [h.name for h in inv.servers] == ["hydra-ai"]
    assert inv.cluster_init.name == "hydra-ai"
    ai = inv.host("hydra-ai")
    assert ai.gpu_resources() == {"nvidia.com/gpu": 2}
    assert node_labels(ai)["hydra.io/gpu-count"] == "2"
    amd = inv.host("hydra-amd")
    assert amd.rocm_gfx_version == "11.0.0"
    assert [vm.name for vm in amd.microvms] == ["hydra-amd-vm1", "hydra-amd-vm2"]
    assert "microvm-host" in amd.all_tags()
    assert inv.storage["hydra-storage"].address == "192.168.1.244"
    nodes = inv.expected_nodes()
    assert nodes["hydra-amd-vm2"]["labels"]["hydra.io/microvm-host"] == "hydra-amd"
    assert [h.name for h in inv.select(tag="@gpu")] == [
        "hydra-ai",
        "hydra-compute",
        "hydra-amd",
    ]


def test_loader_types_the_ha_example() -> None:
    inv = load_inventory(HA)
    assert [h.name for h in inv.servers] == ["cp1", "cp2", "cp3"]
    assert all(h.taints == ("nvidia.com/gpu=present:NoSchedule",) for h in inv.agents)
    assert inv.embedded_etcd


def test_loader_error_is_one_line_naming_file_and_place(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('role = "agent"', 'role = "worker"', 1)
    bad = tmp_path / "inventory.toml"
    bad.write_text(text)
    with pytest.raises(UserError) as err:
        load_inventory(bad)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(bad) in msg and "hosts.hydra-compute.role" in msg


def test_loader_rejects_unparseable_toml(tmp_path: Path) -> None:
    bad = tmp_path / "inventory.toml"
    bad.write_text("[cluster\nname = 1\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_inventory(bad)


def test_example_files_are_valid() -> None:
    for path in (EXAMPLE, HA):
        assert validate(tomllib.loads(path.read_text())) == []


# ----------------------------------------------------------------------------- issue 10/17


@pytest.mark.parametrize(
    "entry", RESERVED_LABELS, ids=lambda r: r.key or r.prefix or ""
)
def test_labels_k3s_or_the_kubelet_own_are_refused(entry: ReservedLabel) -> None:
    key = entry.key or f"{entry.prefix}x"
    got = issues_of(lambda d: d["hosts"]["a1"].update(labels={key: "v"}))
    assert got == {("reserved-label", f"hosts.a1.labels.{key}")}


@pytest.mark.parametrize("entry", RESERVED_TAINTS, ids=lambda r: r.prefix or "")
def test_taints_controllers_own_are_refused(entry: ReservedLabel) -> None:
    key = f"{entry.prefix}x"
    got = issues_of(
        lambda d: d["hosts"]["a1"].update(
            taints=[f"{key}:NoSchedule", "gpu=yes:NoSchedule"]
        )
    )
    assert got == {("reserved-taint", "hosts.a1.taints.0")}


def test_reserved_label_error_is_one_line_naming_file_line_host_and_key(
    tmp_path: Path,
) -> None:
    text = EXAMPLE.read_text().replace(
        '"hydra.io/cpu" = "ryzen-9-9900x"',
        '"node.kubernetes.io/instance-type" = "ryzen"',
    )
    assert text != EXAMPLE.read_text()
    bad = tmp_path / "inventory.toml"
    bad.write_text(text)
    line = next(
        n
        for n, t in enumerate(text.splitlines(), 1)
        if "node.kubernetes.io/instance-type" in t
    )
    with pytest.raises(UserError) as err:
        load_inventory(bad)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(
        f"{bad}:{line}: hosts.hydra-compute.labels.node.kubernetes.io/instance-type:"
    )
    assert "'k3s'" in msg  # says who overwrites it


def test_issues_point_at_their_line(tmp_path: Path) -> None:
    bad = tmp_path / "inventory.toml"
    bad.write_text(
        "[cluster]\n"  # 1
        'name = "c"\n'  # 2
        "[hosts.s1]\n"  # 3
        'address = "10.0.0.1"\n'  # 4
        'role = "server"\n'  # 5
        "cluster_init = true\n"  # 6
        'target_host = "bad host"\n'  # 7
        "[hosts.a1]\n"  # 8
        'address = "10.0.0.2"\n'  # 9
        "gpus = [\n"  # 10
        '  { vendor = "intel", model = "x", count = 1 },\n'  # 11
        "]\n"  # 12
        "[[hosts.a1.nfs]]\n"  # 13
        'server = "nas"\n'  # 14
        'export = "/x"\n'  # 15
        'mountpoint = "/m"\n'  # 16
        "[hosts.a1.labels]\n"  # 17
        '"k3s.io/x" = "y"\n'  # 18
    )
    _, issues = check_file(bad)
    lines = {i.path: i.line for i in issues}
    assert lines == {
        "hosts.s1.target_host": 7,
        "hosts.a1.role": 8,  # missing: the host's header
        "hosts.a1.gpus.0.vendor": 10,  # inside a multi-line array: the key's line
        "hosts.a1.nfs.0.server": 14,
        "hosts.a1.labels.k3s.io/x": 18,
    }


def test_target_host_is_typed_and_optional(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace(
        'address = "192.168.1.203"',
        'address = "192.168.1.203"\ntarget_host = "compute.lab"',
    )
    f = tmp_path / "inventory.toml"
    f.write_text(text)
    inv = load_inventory(f)
    assert inv.host("hydra-compute").target_host == "compute.lab"
    assert inv.host("hydra-compute").address == "192.168.1.203"  # k3s's node IP stays
    assert inv.host("hydra-ai").target_host is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("node1", True),
        ("node1.lab.example.com", True),
        ("node1.lab.", True),
        ("192.168.1.5", True),
        ("fd00::5", True),
        ("node 1", False),
        ("n1;reboot", False),
        ("$(id)", False),
        ("-oProxyCommand=x", False),
        ("user@n1", False),
        ("n1\n", False),
        ("", False),
        ("a" * 64 + ".example", False),
    ],
)
def test_target_host_values(value: str, ok: bool) -> None:
    got = issues_of(lambda d: d["hosts"]["a1"].update(target_host=value))
    assert (got == set()) is ok, got


def test_schema_file_is_the_vocabulary() -> None:
    schema = tomllib.loads(
        (REPO / "tools/hydradeploy/src/hydradeploy/inventory_schema.toml").read_text()
    )
    # a key the schema does not allow is refused, one it allows is not unknown
    for key in schema["tables"]["host"]["allowed"]:
        got = issues_of(lambda d, k=key: d["hosts"]["a1"].update({k: None}))
        assert ("unknown-key", f"hosts.a1.{key}") not in got
    assert "target_host" in schema["tables"]["host"]["allowed"]
