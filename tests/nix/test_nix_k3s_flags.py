"""k3s settings per node, from modules/lib/k3s-flags.nix, for the example clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nixeval import EXAMPLE, HA_EXAMPLE, LIB, load_expr, nix_eval, nix_str, requires_nix

pytestmark = requires_nix
TOKEN = "/run/agenix/k3s-token"


def flags_for(inventory: Path, hosts: list[str]) -> dict[str, Any]:
    body = " ".join(
        f'"{h}" = import {nix_str(LIB / "k3s-flags.nix")} {{ inventory = inv; host = "{h}"; tokenFile = "{TOKEN}"; }};'
        for h in hosts
    )
    result: dict[str, Any] = nix_eval(
        f"let inv = {load_expr(inventory)}; in {{ {body} }}"
    )
    return result


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return flags_for(
        EXAMPLE,
        ["hydra-ai", "hydra-compute", "hydra-amd", "hydra-amd-vm1", "hydra-amd-vm2"],
    )


@pytest.fixture(scope="module")
def ha() -> dict[str, Any]:
    return flags_for(HA_EXAMPLE, ["cp1", "cp2", "cp3", "wk-gpu1", "wk-gpu4"])


def test_cluster_init_server(example: dict[str, Any]) -> None:
    ai = example["hydra-ai"]
    assert ai["flags"] == [
        "server",
        "--cluster-init",
        f"--token-file={TOKEN}",
        "--node-name=hydra-ai",
        "--node-ip=192.168.1.250",
        "--node-label=hydra.io/cpu=threadripper-7960x",
        "--node-label=hydra.io/gpu-class=inference",
        "--node-label=hydra.io/gpu-count=2",
        "--node-label=hydra.io/gpu-vendor=nvidia",
        "--node-label=hydra.io/has-4090=true",
        "--node-label=hydra.io/has-5090=true",
        "--node-label=hydra.io/vram-total=56",
        "--disable=traefik",
        "--flannel-backend=vxlan",
        "--cluster-cidr=10.42.0.0/16",
        "--service-cidr=10.43.0.0/16",
        "--tls-san=192.168.1.250",
        "--etcd-snapshot-schedule-cron=0 */6 * * *",
        "--etcd-snapshot-retention=12",
    ]
    assert ai["serverAddr"] == ""
    assert ai["clusterInit"] is True
    assert ai["role"] == "server"


def test_agents_join_the_api_and_carry_no_server_flags(example: dict[str, Any]) -> None:
    for name in ("hydra-compute", "hydra-amd"):
        agent = example[name]
        assert agent["role"] == "agent"
        assert agent["serverAddr"] == "https://192.168.1.250:6443"
        assert agent["clusterInit"] is False
        assert agent["disable"] == []
        assert agent["extraFlags"] == []
        assert not any(
            f.startswith(("--flannel", "--cluster-cidr", "--etcd"))
            for f in agent["flags"]
        )
    assert "--node-label=hydra.io/gpu-vendor=amd" in example["hydra-amd"]["flags"]
    assert "--node-label=hydra.io/gpu-count=2" in example["hydra-compute"]["flags"]
    assert example["hydra-compute"]["nodeIP"] == "192.168.1.203"


def test_microvm_guests_are_cpu_agents(example: dict[str, Any]) -> None:
    vm = example["hydra-amd-vm1"]
    assert vm["flags"] == [
        "agent",
        "--server=https://192.168.1.250:6443",
        f"--token-file={TOKEN}",
        "--node-name=hydra-amd-vm1",
        "--node-ip=192.168.1.211",
        "--node-label=hydra.io/microvm-host=hydra-amd",
        "--node-label=hydra.io/node-class=cpu",
    ]
    assert example["hydra-amd-vm2"]["nodeIP"] == "192.168.1.212"


def test_ha_servers_join_the_initial_one(ha: dict[str, Any]) -> None:
    assert ha["cp1"]["clusterInit"] is True
    assert ha["cp1"]["serverAddr"] == ""
    for name in ("cp2", "cp3"):
        s = ha[name]
        assert s["clusterInit"] is False
        assert s["serverAddr"] == "https://10.0.0.11:6443"
        assert "--cluster-init" not in s["flags"]
        # every server carries the same cluster-wide server flags
        assert s["extraFlags"] == ha["cp1"]["extraFlags"]
        assert s["disable"] == ["traefik", "servicelb"]
    assert "--etcd-snapshot-schedule-cron=0 */4 * * *" in ha["cp2"]["flags"]
    assert "--etcd-snapshot-retention=18" in ha["cp3"]["flags"]


def test_ha_workers_are_tainted(ha: dict[str, Any]) -> None:
    for name in ("wk-gpu1", "wk-gpu4"):
        assert ha[name]["nodeTaint"] == ["nvidia.com/gpu=present:NoSchedule"]
        assert "--node-taint=nvidia.com/gpu=present:NoSchedule" in ha[name]["flags"]
    assert "--node-label=hydra.io/gpu-count=2" in ha["wk-gpu4"]["flags"]


def test_unknown_host_is_a_clear_error() -> None:
    from nixeval import nix_eval_error

    err = nix_eval_error(
        f'(import {nix_str(LIB / "k3s-flags.nix")} {{ inventory = {load_expr(EXAMPLE)}; host = "nope"; }}).flags'
    )
    assert "'nope' is not a host or microVM guest" in err
