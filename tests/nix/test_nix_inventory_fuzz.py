"""Python and Nix validation agree on many generated inventories, not only the hand-made
case files: hypothesis builds inventories from edge-case values (derandomized, so the
run is reproducible) and one nix-instantiate call validates them all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydradeploy.inventory import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nixeval import LIB, nix_eval, nix_str, requires_nix

pytestmark = requires_nix

ADDRESSES = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.1",
    "fd00::1",
    "::ffff:10.0.0.3",
    "300.1.1.1",
    "01.2.3.4",
    "x",
    7,
]
NAMES = ["a", "b", "srv-1", "Bad_Name", "-x", "a" * 64, "vm"]
LABEL_KEYS = [
    "node.kubernetes.io/exclude-from-external-load-balancers",
    "hydra.io/x",
    "node.kubernetes.io/instance-type",
    "node-role.kubernetes.io/gpu",
    "k3s.io/hostname",
    "kubernetes.io/hostname",
    "kubernetes.io/role",
    "x.k8s.io/y",
    "UP/x",
    "ok",
    "a/b/c",
    "",
]
LABEL_VALUES = ["v", "", "-bad", "a" * 64, 3, "with space"]
TAINTS = [
    "k=v:NoSchedule",
    "node.kubernetes.io/unschedulable:NoSchedule",
    "node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule",
    "k:NoExecute",
    "k=v",
    "k=v:Never",
    ":NoSchedule",
    "bad key:NoSchedule",
    5,
]
CIDRS = [
    "10.42.0.0/16",
    "10.42.0.1/16",
    "fd00::/8",
    "fd00::1/64",
    "10.0.0.0/33",
    "nope",
    16,
]

value = st.sampled_from
host = st.fixed_dictionaries(
    {"address": value(ADDRESSES), "role": value(["server", "agent", "boss", 1])},
    optional={
        "cluster_init": value([True, False, "yes"]),
        "labels": st.dictionaries(value(LABEL_KEYS), value(LABEL_VALUES), max_size=3),
        "taints": st.lists(value(TAINTS), max_size=3),
        "tags": st.lists(value(["gpu", "GPU", "ok-1", 3]), max_size=2),
        "gpus": st.lists(
            st.fixed_dictionaries(
                {"vendor": value(["nvidia", "amd", "intel"]), "model": value(["m", 1])},
                optional={
                    "count": value([1, 0, 2, "1"]),
                    "vram_gb": value([16, 0]),
                    "memory": value([1]),
                },
            ),
            max_size=2,
        ),
        "microvms": st.lists(
            st.fixed_dictionaries(
                {"name": value(NAMES), "address": value(ADDRESSES)},
                optional={
                    "vcpu": value([2, 0, "2"]),
                    "taints": st.lists(value(TAINTS), max_size=2),
                },
            ),
            max_size=2,
        ),
        "nfs": st.lists(
            st.fixed_dictionaries(
                {
                    "server": value(["nas", "other", 1]),
                    "export": value(["/srv", "/x", 2]),
                },
                optional={
                    "mountpoint": value(["/m", "rel", 3]),
                    "read_only": value([True, "no"]),
                },
            ),
            max_size=2,
        ),
        "ssh": st.fixed_dictionaries(
            {}, optional={"port": value([22, 0, 70000, "22"]), "sudo": value([True, 1])}
        ),
        "extra": value([1]),
    },
)
inventory = st.fixed_dictionaries(
    {
        "cluster": st.fixed_dictionaries(
            {},
            optional={
                "name": value(["c", "Bad", 1]),
                "cluster_cidr": value(CIDRS),
                "flannel_backend": value(["vxlan", "host-gw", "calico"]),
                "disable": st.lists(value(["traefik", "kube-proxy", 1]), max_size=2),
                "api_endpoint": value(
                    ["https://10.0.0.1:6443", "http://x", "https://[fd00::1]:6443"]
                ),
                "etcd_snapshot_retention": value([12, 0, "12"]),
            },
        ),
        "hosts": st.dictionaries(value(NAMES), host, max_size=4),
    },
    optional={
        "storage": st.dictionaries(
            value(["nas", "a", "Bad"]),
            st.fixed_dictionaries(
                {
                    "address": value(ADDRESSES),
                    "exports": st.lists(value(["/srv", 1]), max_size=2),
                }
            ),
            max_size=2,
        ),
        "ssh": st.fixed_dictionaries({}, optional={"user": value(["root", 1])}),
    },
)

# Valid inventories with zero or one field changed: they keep the generator close to the
# boundary between valid and invalid.
VALID: dict[str, Any] = {
    "cluster": {"name": "c", "flannel_backend": "wireguard-native"},
    "storage": {"nas": {"address": "10.0.0.9", "exports": ["/srv"]}},
    "hosts": {
        "s1": {"address": "10.0.0.1", "role": "server", "cluster_init": True},
        "s2": {"address": "fd00::2", "role": "server"},
        "a1": {
            "address": "10.0.0.3",
            "role": "agent",
            "gpus": [{"vendor": "amd", "model": "780M", "count": 1}],
            "nfs": [{"server": "nas", "export": "/srv", "mountpoint": "/srv"}],
            "microvms": [{"name": "vm1", "address": "10.0.0.4"}],
        },
    },
}
MUTATIONS: list[tuple[tuple[str, ...], Any]] = [
    ((), None),
    (("hosts", "a1", "address"), "10.0.0.1"),
    (("hosts", "a1", "role"), "server"),
    (("hosts", "s2", "cluster_init"), True),
    (("hosts", "s1", "role"), "agent"),
    (("hosts", "a1", "labels"), {"hydra.io/ok": "yes"}),
    (("hosts", "a1", "taints"), ["gpu=yes:NoSchedule"]),
    (("hosts", "s2", "address"), "fd00::4"),
    (("cluster", "service_cidr"), "fd00:43::/112"),
    (("storage", "nas", "exports"), ["/other"]),
    (("hosts", "a1", "rocm_gfx_version"), "11.0.2"),
]


def mutated(choice: tuple[tuple[str, ...], Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(VALID))
    path, new = choice
    if path:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = new
    return data


CASES: list[dict[str, Any]] = []


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(st.one_of(inventory, st.sampled_from(MUTATIONS).map(mutated)))
def collect(data: dict[str, Any]) -> None:
    CASES.append(data)


def test_python_and_nix_agree_on_generated_inventories(tmp_path: Path) -> None:
    collect()
    assert len(CASES) >= 100
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(CASES))
    nix = nix_eval(
        f"let inv = import {nix_str(LIB / 'inventory.nix')}; in "
        f"map (d: map (i: {{ inherit (i) code path; }}) (inv.validate d)) "
        f"(builtins.fromJSON (builtins.readFile {nix_str(cases_file)}))"
    )
    disagreements = []
    flagged = 0
    for data, nix_issues in zip(CASES, nix, strict=True):
        python = sorted({(i.code, i.path) for i in validate(data)})
        nixset = sorted({(i["code"], i["path"]) for i in nix_issues})
        flagged += bool(python)
        if python != nixset:
            disagreements.append((data, python, nixset))
    assert not disagreements, disagreements[:3]
    # the generator reaches both valid and invalid inventories
    assert 0 < flagged < len(CASES)
