"""The flake (modules/lib/inventory.nix) and hydradeploy (inventory.py) apply the same
rules: same (code, path) issues on good and bad inventories, and the same derived view
of the example clusters as `hydradeploy inventory show --output json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hydradeploy.inventory import parse_toml, validate
from nixeval import (
    EXAMPLE,
    HA_EXAMPLE,
    LIB,
    REPO,
    load_expr,
    nix_eval,
    nix_eval_error,
    nix_str,
    requires_nix,
)

CASES = sorted((Path(__file__).parent / "inventories").glob("*.toml"))
ALL = [*CASES, EXAMPLE, HA_EXAMPLE]

pytestmark = requires_nix


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    """The example cluster as the flake sees it (inventory.nix `build`)."""
    result: dict[str, Any] = nix_eval(load_expr(EXAMPLE))
    return result


@pytest.fixture(scope="module")
def nix_issues() -> dict[str, list[dict[str, str]]]:
    """All cases in one evaluation (one nix-instantiate process)."""
    body = " ".join(
        f'"{i}" = map (x: {{ inherit (x) code path; }}) (inv.validate (builtins.fromTOML '
        f"(builtins.readFile {nix_str(path)})));"
        for i, path in enumerate(ALL)
    )
    result: dict[str, list[dict[str, str]]] = nix_eval(
        f"let inv = import {nix_str(LIB / 'inventory.nix')}; in {{ {body} }}"
    )
    return result


def test_there_are_good_and_bad_cases() -> None:
    names = [p.stem for p in CASES]
    assert sum(n.startswith("good-") for n in names) >= 2
    assert sum(n.startswith("bad-") for n in names) >= 15


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_python_and_nix_report_the_same_issues(
    path: Path, nix_issues: dict[str, list[dict[str, str]]]
) -> None:
    python = sorted({(i.code, i.path) for i in validate(parse_toml(path))})
    nix = sorted({(i["code"], i["path"]) for i in nix_issues[str(ALL.index(path))]})
    assert python == nix
    if path.stem.startswith("bad-"):
        assert python, f"{path.name} is meant to be invalid"
    else:
        assert not python, f"{path.name} is meant to be valid"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad-two-cluster-init", {("many-cluster-init", "hosts")}),
        ("bad-no-cluster-init", {("no-cluster-init", "hosts")}),
        (
            "bad-duplicate-addresses",
            {
                ("duplicate-address", "hosts.a.address"),
                ("duplicate-address", "hosts.b.address"),
                ("duplicate-address", "storage.nas.address"),
                ("duplicate-address", "hosts.b.microvms.0.address"),
                ("duplicate-address", "hosts.a.microvms.0.address"),
                ("duplicate-address", "hosts.b.microvms.1.address"),
            },
        ),
    ],
)
def test_key_rules_say_what_and_where(
    case: str, expected: set[tuple[str, str]]
) -> None:
    path = Path(__file__).parent / "inventories" / f"{case}.toml"
    assert {(i.code, i.path) for i in validate(parse_toml(path))} == expected


@pytest.mark.parametrize("inventory", [EXAMPLE, HA_EXAMPLE], ids=lambda p: p.stem)
def test_nix_derives_what_hydradeploy_shows(inventory: Path, cli: Any) -> None:
    proc = cli("--inventory", str(inventory), "inventory", "show", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    python = json.loads(proc.stdout)
    nix = nix_eval(f"{load_expr(inventory)}.show")
    assert nix == python
    # and it is not vacuous: hosts, microVM nodes, GPUs, labels are all there
    assert set(python["nodes"]) >= set(python["hosts"])


def test_example_cluster_nodes(example: dict[str, Any]) -> None:
    nodes = example["nodes"]
    assert sorted(nodes) == [
        "hydra-ai",
        "hydra-amd",
        "hydra-amd-vm1",
        "hydra-amd-vm2",
        "hydra-compute",
    ]
    assert nodes["hydra-ai"]["gpus"] == {"nvidia.com/gpu": 2}
    assert nodes["hydra-compute"]["gpus"] == {"nvidia.com/gpu": 2}
    assert nodes["hydra-amd"]["gpus"] == {"amd.com/gpu": 1}
    assert nodes["hydra-amd-vm1"] == {
        "host": "hydra-amd",
        "role": "agent",
        "address": "192.168.1.211",
        "labels": {"hydra.io/node-class": "cpu", "hydra.io/microvm-host": "hydra-amd"},
        "taints": [],
        "gpus": {},
    }
    assert nodes["hydra-ai"]["labels"]["hydra.io/gpu-vendor"] == "nvidia"
    assert nodes["hydra-ai"]["labels"]["hydra.io/gpu-count"] == "2"
    assert example["cluster"]["cluster_init"] == "hydra-ai"
    assert example["servers"] == ["hydra-ai"]
    assert example["hosts"]["hydra-ai"]["nfs"][0]["server_address"] == "192.168.1.244"


def test_defaults_are_filled(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.toml"
    inv.write_text(
        '[cluster]\nname = "c"\n[hosts.s]\naddress = "fd00::1"\nrole = "server"\ncluster_init = true\n'
        '[hosts.a]\naddress = "10.0.0.2"\nrole = "agent"\nmicrovms = [{ name = "vm", address = "10.0.0.3" }]\n'
    )
    built = nix_eval(load_expr(inv))
    assert built["cluster"]["api_endpoint"] == "https://[fd00::1]:6443"
    assert built["cluster"]["flannel_backend"] == "vxlan"
    assert built["cluster"]["cluster_cidr"] == "10.42.0.0/16"
    assert built["hosts"]["a"]["ssh"] == {
        "user": "root",
        "port": 22,
        "key": None,
        "jump": None,
        "sudo": False,
        "known_hosts": None,
        "host_key": None,
    }
    assert built["hosts"]["a"]["microvms"][0]["vcpu"] == 2
    assert built["hosts"]["a"]["microvms"][0]["memory_mb"] == 4096


def test_loading_a_bad_inventory_stops_evaluation_with_every_issue() -> None:
    bad = Path(__file__).parent / "inventories" / "bad-values.toml"
    err = nix_eval_error(load_expr(bad))
    assert "invalid inventory" in err
    assert "cluster.flannel_backend" in err
    assert "hosts.Bad_Host.address" in err
    assert "[bad-value]" in err


def test_repo_example_is_the_default_inventory() -> None:
    assert EXAMPLE == REPO / "hosts" / "inventory.toml"


def test_nix_reads_the_same_schema_file_as_python() -> None:
    import tomllib

    schema_file = REPO / "tools/hydradeploy/src/hydradeploy/inventory_schema.toml"
    assert nix_eval(
        f"(import {nix_str(LIB / 'inventory.nix')}).schema"
    ) == tomllib.loads(schema_file.read_text())


def test_nix_refuses_a_reserved_label_naming_host_and_key(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace(
        '"hydra.io/cpu" = "ryzen-9-9900x"',
        '"node.kubernetes.io/instance-type" = "ryzen"',
    )
    bad = tmp_path / "inventory.toml"
    bad.write_text(text)
    err = nix_eval_error(f"({load_expr(bad)}).cluster.name")
    line = next(t for t in err.splitlines() if "instance-type" in t)
    assert "hosts.hydra-compute.labels.node.kubernetes.io/instance-type" in line
    assert "[reserved-label]" in line and "'k3s'" in line


def test_target_host_reaches_the_nix_view() -> None:
    hosts = nix_eval(
        f"({load_expr(REPO / 'tests/nix/inventories/good-ha.toml')}).hosts"
    )
    assert hosts["v6"]["target_host"] == "v6.lab.example.com"
    assert hosts["v6"]["address"] == "fd00::22"
    assert all(h["target_host"] is None for n, h in hosts.items() if n != "v6")
