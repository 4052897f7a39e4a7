"""The reboot's wave planning (deploy/reboot.py plan_waves): servers one at a time, agents
in waves of --max-parallel that keep one GPU node of each vendor up."""

from __future__ import annotations

import pytest
from hydradeploy.deploy.reboot import plan_waves
from hydradeploy.errors import UserError
from hydradeploy.inventory import Gpu, Host


def host(name: str, role: str = "agent", *vendors: str, init: bool = False) -> Host:
    gpus = tuple(Gpu(v, f"{v} card", 1) for v in vendors)
    return Host(name, f"10.0.0.{len(name)}", role, cluster_init=init, gpus=gpus)


def names(waves: list[list[Host]]) -> list[list[str]]:
    return [[h.name for h in w] for w in waves]


SRV = host("srv", "server", init=True)
SRV2 = host("srv2", "server")
N1, N2, A1, A2 = host("n1", "agent", "nvidia"), host("n2", "agent", "nvidia"), \
    host("a1", "agent", "amd"), host("a2", "agent", "amd")  # fmt: skip
PLAIN = host("cpu", "agent")
EVERY = [SRV, SRV2, N1, N2, A1, A2, PLAIN]


def test_servers_one_per_wave_cluster_init_last_then_agents_one_at_a_time() -> None:
    assert names(plan_waves(EVERY, EVERY, 1, False)) == [
        ["srv2"],
        ["srv"],
        ["n1"],
        ["n2"],
        ["a1"],
        ["a2"],
        ["cpu"],
    ]


def test_waves_never_take_the_last_node_of_a_vendor() -> None:
    # n1 and n2 are the only NVIDIA nodes: never in the same wave, whatever the width
    assert names(plan_waves([N1, N2, A1, A2, PLAIN], EVERY, 4, False)) == [
        ["n1", "a1", "cpu"],
        ["n2", "a2"],
    ]
    assert names(plan_waves([N1, N2, PLAIN], EVERY, 2, False)) == [
        ["n1", "cpu"],
        ["n2"],
    ]


def test_force_ignores_capacity() -> None:
    assert names(plan_waves([N1, N2, A1, A2], EVERY, 4, True)) == [
        ["n1", "n2", "a1", "a2"]
    ]


def test_the_only_node_of_a_vendor_needs_force() -> None:
    every = [SRV, N1, A1]
    with pytest.raises(
        UserError, match=r"reboot n1: it is the only nvidia GPU node.*--force"
    ):
        plan_waves([N1], every, 1, False)
    assert names(plan_waves([N1], every, 1, True)) == [["n1"]]


def test_servers_never_share_a_wave_even_with_max_parallel() -> None:
    waves = plan_waves([SRV, SRV2, PLAIN], EVERY, 8, False)
    assert all(sum(h.is_server for h in w) <= 1 for w in waves)
    assert names(waves) == [["srv2"], ["srv"], ["cpu"]]
