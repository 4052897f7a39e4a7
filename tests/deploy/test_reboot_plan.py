"""The reboot's wave planning (deploy/reboot.py plan_waves): servers one at a time, agents
in waves of --max-parallel that keep one GPU node of each vendor up."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hydradeploy.deploy.progress import Progress
from hydradeploy.deploy.reboot import Options, Run, plan_waves
from hydradeploy.errors import UserError
from hydradeploy.inventory import Gpu, Host, load_inventory
from hydradeploy.transport.pool import Pool
from transport_fake import FakeNet


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


# ------------------------------------------------------------------ a drain that fails

REPO = Path(__file__).resolve().parents[2]


def test_a_drain_that_times_out_uncordons_names_the_host_and_stops() -> None:
    """kubectl drain failing (a PodDisruptionBudget kept a pod): one line naming the
    host and the likely cause; the host is uncordoned and not rebooted; later hosts are
    not touched. The commands are those a real cluster gets (tests/transport_fake.py)."""
    inv = load_inventory(REPO / "hosts" / "inventory.toml")
    agents = inv.agents[:2]
    assert len(agents) == 2, "the example inventory has two agents"
    first, second = agents
    net = FakeNet()
    kube = inv.cluster_init.name
    net.reply(kube, f"drain {first.name}", rc=1,
              stderr='error when evicting pods/"web-0" -n "apps" (will retry after 5s): '
                     "Cannot evict pod as it would violate the pod's disruption budget.\n"
                     'There are pending pods in node "x" when an error occurred: '
                     "global timeout reached: 7s")  # fmt: skip
    run = Run(inv, Options(drain_timeout=7, force=True), Progress([], stream=io.StringIO()),
              Pool(inv, net.connect))  # fmt: skip
    results = {r.host: r for r in run.go([[first], [second]])}
    bad = results[first.name]
    assert bad.outcome == "failed" and bad.steps == ["cordon", "drain"]
    assert bad.message.startswith(f"{first.name}: drain did not finish within 7s: a "
                                  "PodDisruptionBudget or a pod that would not leave")  # fmt: skip
    assert "global timeout reached" in bad.message and "\n" not in bad.message
    assert results[second.name].outcome == "skipped"
    lines = net.lines(kube)
    assert any(f"k3s kubectl drain {first.name} --ignore-daemonsets --delete-emptydir-data "
               "--timeout=7s" in ln for ln in lines), lines  # fmt: skip
    assert any(f"kubectl uncordon {first.name}" in ln for ln in lines), lines
    assert not any("reboot" in ln for _, ln in net.calls), net.calls
    assert not any(second.name in ln for _, ln in net.calls), net.calls
