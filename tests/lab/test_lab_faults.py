"""Every fault the lab injects behaves as the lab contract describes."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest
from hydradeploy.lab import HostSpec, Lab

pytestmark = pytest.mark.lab

PROFILE = "/nix/var/nix/profiles/system"


@pytest.fixture(scope="module")
def lab(lab_factory) -> Lab:
    return lab_factory(
        [HostSpec("srv", "server"), HostSpec("w1", "agent", gpus={"nvidia": 2}),
         HostSpec("w2", "agent", gpus={"nvidia": 1})],
        grace_seconds=3.0,
    )  # fmt: skip


def ssh_argv(lab: Lab, host: str, *opts: str) -> list[str]:
    return ["ssh", "-i", str(lab.key_path), "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={lab.known_hosts_path}", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=3", *opts, f"root@{lab.address(host)}"]  # fmt: skip


def ssh(
    lab: Lab, host: str, command: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ssh_argv(lab, host), command], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def current(lab: Lab, host: str) -> str:
    return lab.run(host, ["readlink", "/run/current-system"]).stdout.strip()


def node(lab: Lab, name: str) -> dict:
    return next(n for n in lab.nodes() if n["metadata"]["name"] == name)


@pytest.fixture
def healthy(lab: Lab):
    """Each test leaves w1 and w2 on their generation-1 closure, linked and Ready."""
    gen1 = {
        h: lab.run(h, ["readlink", "-f", PROFILE]).stdout.strip() for h in ("w1", "w2")
    }
    yield gen1
    for host, path in gen1.items():
        lab.restore(host)
        lab.slow(host, 0)
        lab.start_sshd(host)
        lab.run(host, [f"{path}/bin/switch-to-configuration", "switch"])
    lab.wait_ready(timeout=20)


def install(lab: Lab, host: str, fault: str | None) -> str:
    path = lab.closure(host, fault=fault)
    lab.copy_closure(host, path)
    return path


def test_activation_fault_fails_half_way_over_ssh(lab: Lab, healthy) -> None:
    bad = install(lab, "w1", "activation")
    proc = ssh(lab, "w1", f"{bad}/bin/switch-to-configuration switch")
    # Upstream (main.rs @00401fd7e581): a failed activation script is exit code 2.
    assert proc.returncode == 2, proc.stderr
    assert "Activation script snippet 'hydra-lab-fault' failed (1)" in proc.stdout
    assert "Failed to run activate script" in proc.stderr
    assert current(lab, "w1") == bad  # half-way: already switched, k3s stopped
    state = lab.run("w1", ["systemctl", "is-active", "k3s"])
    assert (state.returncode, state.stdout.strip()) == (3, "inactive")
    log = lab.run("w1", ["tail", "-n1", "/var/lib/hydra-lab/activations.log"]).stdout
    assert log.split()[1:] == ["switch", bad, "failed"]
    eventually(
        lambda: lab.node_ready("w1") is False, 10, "w1 NotReady with k3s stopped"
    )
    # Rolling back = activating the previous closure again.
    good = healthy["w1"]
    assert ssh(lab, "w1", f"{good}/bin/switch-to-configuration switch").returncode == 0
    assert current(lab, "w1") == good
    eventually(lambda: lab.node_ready("w1") is True, 10, "w1 Ready after rollback")


def test_network_fault_locks_out_until_the_host_activates_a_good_closure(
    lab: Lab, healthy
) -> None:
    bad = install(lab, "w2", "network")
    good = healthy["w2"]
    lab.run("w2", [f"{bad}/bin/switch-to-configuration", "switch"])
    # What a deployer's watchdog does: a transient unit of the host's systemd (armed from
    # inside, as the host is cut off now).
    # systemd.timer(5) (Debian systemd 252.39): "AccuracySec= defaults to 1 minute" — a
    # 6 s timer may otherwise fire up to a minute late.
    armed = lab.run("w2", ["systemd-run", "--quiet", "--collect", "--unit=lab-watchdog",
                           "--on-active=6", "--timer-property=AccuracySec=100ms",
                           f"{good}/bin/switch-to-configuration", "switch"])  # fmt: skip
    assert armed.returncode == 0, armed.stderr
    assert ssh(lab, "w2", "true", timeout=15).returncode == 255  # unreachable
    assert (
        lab.run("w2", ["cat", "/sys/class/net/eth0/operstate"]).stdout.strip() == "down"
    )
    eventually(lambda: ssh(lab, "w2", "true", timeout=15).returncode == 0, 20,
               "w2 reachable once the watchdog re-activated the good closure")  # fmt: skip
    assert current(lab, "w2") == good
    eventually(lambda: lab.node_ready("w2") is True, 10, "w2 Ready again")


def test_join_fault_never_registers(lab: Lab, healthy) -> None:
    bad = install(lab, "w2", "join")
    assert ssh(lab, "w2", f"{bad}/bin/switch-to-configuration switch").returncode == 0
    # The unit runs (like a k3s agent retrying) but the node stops heartbeating.
    assert lab.run("w2", ["systemctl", "is-active", "k3s"]).returncode == 0
    eventually(lambda: lab.node_ready("w2") is False, 10, "w2 NotReady")
    unreachable = {t["key"] for t in node(lab, "w2")["spec"].get("taints", [])}
    assert "node.kubernetes.io/unreachable" in unreachable
    # A node that never joined at all is absent, as kubectl reports it.
    lab.run("srv", ["k3s", "kubectl", "delete", "node", "w2"])
    time.sleep(1.5)
    got = lab.run("srv", ["k3s", "kubectl", "get", "node", "w2", "-o", "json"])
    assert got.returncode == 1 and 'nodes "w2" not found' in got.stderr


def test_labels_fault_merges_its_wrong_label(lab: Lab, healthy) -> None:
    before = node(lab, "w1")["metadata"]["labels"]
    assert before["hydra.io/gpu-vendor"] == "nvidia"
    bad = install(lab, "w1", "labels")
    assert ssh(lab, "w1", f"{bad}/bin/switch-to-configuration switch").returncode == 0

    def wrong() -> bool:
        labels = node(lab, "w1")["metadata"]["labels"]
        return "hydra.io/lab-fault" in labels

    eventually(wrong, 10, "w1 carries the wrong label")
    # k3s merges --node-label values into the existing node and never removes one
    # (updateMutableLabels, k3s pkg/agent/run.go): the old labels stay.
    assert node(lab, "w1")["metadata"]["labels"]["hydra.io/gpu-vendor"] == "nvidia"
    assert lab.node_ready("w1") is True


def test_gpus_fault_registers_without_gpus(lab: Lab, healthy) -> None:
    # After a k3s restart GPUs count 0 until the device plugin registers again.
    eventually(lambda: node(lab, "w1")["status"]["allocatable"].get("nvidia.com/gpu") == "2",
               10, "w1's GPUs allocatable")  # fmt: skip
    bad = install(lab, "w1", "gpus")
    assert ssh(lab, "w1", f"{bad}/bin/switch-to-configuration test").returncode == 0
    eventually(lambda: node(lab, "w1")["status"]["allocatable"].get("nvidia.com/gpu", "0") == "0",
               10, "w1 without allocatable GPUs")  # fmt: skip
    assert node(lab, "w1")["metadata"]["labels"]["hydra.io/gpu-count"] == "2"


def test_cut_turns_node_not_ready_and_restore_brings_it_back(lab: Lab, healthy) -> None:
    lab.cut("w1")
    assert ssh(lab, "w1", "true", timeout=15).returncode == 255
    eventually(lambda: lab.node_ready("w1") is False, 10, "w1 NotReady after cut")
    ready = next(
        c for c in node(lab, "w1")["status"]["conditions"] if c["type"] == "Ready"
    )
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    lab.restore("w1")
    eventually(lambda: lab.node_ready("w1") is True, 10, "w1 Ready after restore")
    assert ssh(lab, "w1", "true").returncode == 0


def test_kill_and_start_sshd(lab: Lab, healthy) -> None:
    lab.kill_sshd("w2")
    proc = ssh(lab, "w2", "true")
    assert proc.returncode == 255 and "refused" in proc.stderr
    assert lab.node_ready("w2") is True  # only sshd is gone
    lab.start_sshd("w2")
    assert ssh(lab, "w2", "true").returncode == 0


def test_slow_host_gets_a_qdisc_each_way_and_still_answers(lab: Lab, healthy) -> None:
    lab.slow("w2", 50)
    veth = lab._host("w2").veth
    outside = subprocess.run(["tc", "qdisc", "show", "dev", veth], capture_output=True,
                             text=True, check=True, timeout=10).stdout  # fmt: skip
    inside = lab.run("w2", ["tc", "qdisc", "show", "dev", "eth0"]).stdout
    assert ("netem" in outside or "tbf" in outside) and (
        "netem" in inside or "tbf" in inside
    )
    assert ssh(lab, "w2", "echo slow").stdout == "slow\n"
    lab.slow("w2", 0)
    outside = subprocess.run(["tc", "qdisc", "show", "dev", veth], capture_output=True,
                             text=True, check=True, timeout=10).stdout  # fmt: skip
    assert "netem" not in outside and "tbf" not in outside


def test_boot_and_dry_activate_change_nothing_running(lab: Lab, healthy) -> None:
    before = current(lab, "w1")
    same = install(lab, "w1", None)
    dry = ssh(lab, "w1", f"{same}/bin/switch-to-configuration dry-activate")
    # Same k3s settings, same k3s.service: nothing to restart (as NixOS compares units).
    # Upstream (switch-to-configuration-ng main.rs @00401fd7e581) says it all on stderr.
    assert (
        dry.returncode == 0 and "would activate the configuration..." in dry.stderr
    ), dry
    assert "would restart" not in dry.stderr and "would start" not in dry.stderr, (
        dry.stderr
    )
    new = install(lab, "w1", "labels")
    dry = ssh(lab, "w1", f"{new}/bin/switch-to-configuration dry-activate")
    assert (
        dry.returncode == 0
        and "would restart the following units: k3s.service" in dry.stderr
    ), dry.stderr
    assert current(lab, "w1") == before
    boot = ssh(lab, "w1", f"{new}/bin/switch-to-configuration boot")
    assert boot.returncode == 0
    assert current(lab, "w1") == before
    log = lab.run("w1", ["tail", "-n1", "/var/lib/hydra-lab/activations.log"]).stdout
    assert log.split()[1:] == ["boot", new, "ok"]
    assert lab.run("w1", ["readlink", "-f", PROFILE]).stdout.strip() == healthy["w1"]
    usage = ssh(lab, "w1", f"{new}/bin/switch-to-configuration bogus")
    assert usage.returncode == 1 and "Usage" in usage.stderr


def test_full_disk_makes_copies_fail_until_freed(lab: Lab, healthy, tmp_path) -> None:
    import os

    payload = tmp_path / f"lab-disk-{os.getpid()}"
    payload.mkdir()
    (payload / "blob").write_bytes(os.urandom(64 * 1024))
    path = subprocess.run(["nix-store", "--add", str(payload)], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()  # fmt: skip
    env = {**os.environ, "NIX_SSHOPTS": " ".join(ssh_argv(lab, "w2")[1:-1])}
    copy = ["nix", "--extra-experimental-features", "nix-command", "copy", "--to",
            f"ssh://root@{lab.address('w2')}", path]  # fmt: skip
    lab.fill_disk("w2")
    try:
        full = subprocess.run(copy, capture_output=True, text=True, env=env, timeout=60,
                              check=False)  # fmt: skip
        assert full.returncode != 0
        assert lab.run("w2", ["test", "-e", path]).returncode == 1
    finally:
        lab.free_disk("w2")
    ok = subprocess.run(
        copy, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert lab.run("w2", ["nix-store", "--check-validity", path]).returncode == 0


def test_store_is_read_only_and_unmodified_after_all_the_activations(lab: Lab) -> None:
    # Runs last in this module: every closure above was activated on w1 or w2.
    for host in ("w1", "w2"):
        touch = lab.run(host, ["touch", "/nix/store/.x"])
        assert touch.returncode != 0 and "Read-only" in touch.stderr
        verify = lab.run(
            host, ["nix-store", "--verify", "--check-contents"], timeout=120
        )
        assert verify.returncode == 0, verify.stderr
        assert "modified" not in verify.stderr
