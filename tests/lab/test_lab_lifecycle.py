"""Bringing labs up and down: from an inventory (microVM guests too), several labs at
once, `down` leaving nothing behind, cleanup after a crash, and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hydradeploy.inventory import load_inventory
from hydradeploy.lab import HostSpec, Lab
from hydradeploy.lab.requirements import missing
from hydradeploy.lab.state import REGISTRY
from hydradeploy.lab.teardown import reap_orphans

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
needs_lab = pytest.mark.skipif(missing() is not None, reason=str(missing()))


def alive(pid: int) -> bool:
    """Running (a zombie whose parent has not reaped it yet is dead already)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def traces(lab_dir: Path, index: int) -> list[str]:
    """Everything a lab could leave behind, as readable strings (empty when clean)."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True, timeout=10).stdout  # fmt: skip
    found += [f"netns {line.split()[0]}" for line in netns.splitlines()
              if line.startswith(f"hydralab{index}-")]  # fmt: skip
    if Path(f"/sys/class/net/hl{index}br").exists():
        found.append(f"bridge hl{index}br")
    if (REGISTRY / f"net-{index}").exists():
        found.append(f"registry net-{index}")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not alive(int(proc.name)):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            mounts = (proc / "mountinfo").read_text()
        except OSError:
            continue
        if str(lab_dir) in cmdline or str(lab_dir) in mounts:
            found.append(f"process {proc.name}: {cmdline[:80]}")
    if (lab_dir / "lab.json").exists():
        found.append("lab.json")
    if (lab_dir / "hosts").exists():
        found.append("hosts/")
    return found


@needs_lab
def test_down_leaves_nothing_behind_and_is_idempotent(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab")
    lab.up([HostSpec("solo", "server", gpus={"nvidia": 1})])
    index = int(lab.hosts["solo"].netns.removeprefix("hydralab").split("-")[0])
    assert traces(lab.dir, index), "the lab should exist before down"
    pids = [int(p) for p in subprocess.run(
        ["ip", "netns", "pids", lab.hosts["solo"].netns], capture_output=True, text=True,
        check=True, timeout=10).stdout.split()]  # fmt: skip
    assert len(pids) >= 3  # keeper, sshd, k3s
    lab.down()
    assert traces(tmp_path / "lab", index) == []
    assert not (
        tmp_path / "lab"
    ).exists()  # the lab created the directory, so it goes too
    assert not [p for p in pids if alive(p)]
    lab.down()  # idempotent


@needs_lab
def test_down_cleans_up_after_a_killed_up(tmp_path: Path) -> None:
    lab_dir = tmp_path / "crash"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from hydradeploy.lab import Lab, HostSpec
        Lab(Path({str(lab_dir)!r}), ephemeral=True).up(
            [HostSpec("a", "server"), HostSpec("b", "agent")])
        print("up", flush=True)
        import time; time.sleep(600)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    lab = Lab(lab_dir)
    index = int(lab.hosts["a"].netns.removeprefix("hydralab").split("-")[0])
    assert traces(lab_dir, index), "a killed runner leaves the lab running"
    assert lab_dir in reap_orphans()  # what the pytest plugin runs at session start
    assert traces(lab_dir, index) == []


@needs_lab
def test_down_finds_a_lab_killed_half_way_through_up(tmp_path: Path) -> None:
    lab_dir = tmp_path / "half"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from hydradeploy.lab import Lab, HostSpec
        Lab(Path({str(lab_dir)!r})).up([HostSpec(f"h{{i}}", "server" if i == 0 else "agent")
                                         for i in range(4)])
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 20
    while (
        not list((lab_dir / "hosts").glob("*/keeper.log"))
        and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    state = (lab_dir / "lab.json").read_text()
    index = int(state.split('"index": ')[1].split(",")[0])
    Lab(lab_dir).down()
    assert traces(lab_dir, index) == []


def test_lab_from_the_repository_inventory(lab_factory) -> None:
    lab = lab_factory(inventory=REPO / "hosts" / "inventory.toml")
    source = load_inventory(REPO / "hosts" / "inventory.toml")
    inv = load_inventory(lab.inventory_path)
    assert list(inv.hosts) == list(source.hosts)
    expected = inv.expected_nodes()
    assert expected.keys() == source.expected_nodes().keys()
    nodes = {n["metadata"]["name"]: n for n in lab.nodes()}
    assert set(nodes) == set(expected)  # hydra-amd-vm1/vm2 registered by hydra-amd
    for name, want in expected.items():
        labels = nodes[name]["metadata"]["labels"]
        assert want["labels"].items() <= labels.items(), name
        gpus = {k: str(v) for k, v in want["gpus"].items()}
        assert gpus.items() <= nodes[name]["status"]["allocatable"].items(), name
    assert (
        nodes["hydra-amd-vm1"]["metadata"]["labels"]["hydra.io/microvm-host"]
        == "hydra-amd"
    )
    assert inv.host("hydra-ai").address != source.host("hydra-ai").address
    for vm in inv.host("hydra-amd").microvms:
        assert vm.address.startswith("198.1")


def test_two_labs_run_at_once_on_distinct_subnets(lab_factory) -> None:
    one = lab_factory([HostSpec("x", "server")])
    two = lab_factory([HostSpec("x", "server")])
    assert one.address("x").rsplit(".", 1)[0] != two.address("x").rsplit(".", 1)[0]
    assert one.hosts["x"].netns != two.hosts["x"].netns
    assert one.node_ready("x") and two.node_ready("x")


def cli(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hydradeploy", "lab", *args]
    if user is not None:
        argv = [
            "setpriv",
            f"--reuid={user}",
            f"--regid={user}",
            "--clear-groups",
            *argv,
        ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO)  # fmt: skip


@needs_lab
def test_cli_up_closure_cut_restore_down(tmp_path: Path) -> None:
    lab_dir = tmp_path / "cli"
    up = cli("up", "--dir", str(lab_dir), "s1:server:nvidia=1", "a1:agent:amd=1")
    try:
        assert up.returncode == 0, up.stderr
        inventory = Path(up.stdout.strip().splitlines()[-1])
        assert inventory == lab_dir / "inventory.toml" and inventory.is_file()
        assert set(load_inventory(inventory).hosts) == {"s1", "a1"}
        built = cli("closure", "--dir", str(lab_dir), "a1", "--fault", "gpus")
        assert built.returncode == 0, built.stderr
        path = built.stdout.strip().splitlines()[-1]
        assert (
            path.startswith("/nix/store/")
            and "-nixos-system-a1-gpus-fault-26.05.lab" in path
        )
        assert os.path.isfile(f"{path}/bin/switch-to-configuration")
        inside = cli("exec", "--dir", str(lab_dir), "a1", "--", "cat", "/etc/hydra-lab")
        assert (inside.returncode, inside.stdout) == (0, "a1\n")
        assert cli("exec", "--dir", str(lab_dir), "a1", "--", "false").returncode == 1
        assert cli("cut", "--dir", str(lab_dir), "a1").returncode == 0
        assert "cut" in cli("status", "--dir", str(lab_dir), "--output", "json").stdout
        assert cli("restore", "--dir", str(lab_dir), "a1").returncode == 0
        bad = cli("cut", "--dir", str(lab_dir), "nope")
        assert (
            bad.returncode == 2 and bad.stderr.count("\n") == 1 and "nope" in bad.stderr
        )
        again = cli("up", "--dir", str(lab_dir), "s1:server")
        assert again.returncode == 2 and "already up" in again.stderr
    finally:
        down = cli("down", "--dir", str(lab_dir))
    assert down.returncode == 0, down.stderr
    assert not lab_dir.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["up", "--dir", "/tmp/never", "s1:boss"], "server or agent"),
        (["up", "--dir", "/tmp/never", "s1:server:intel=1"], "nvidia=N or amd=N"),
        (
            ["up", "--dir", "/tmp/never", "a:agent"],
            "at least one host must be a server",
        ),
        (["up", "--dir", "/tmp/never"], "either HOST:ROLE"),
        (["closure", "--dir", "/tmp/never", "x", "--fault", "bogus"], "bogus"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    proc = cli(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not Path("/tmp/never").exists()


def test_cli_without_root_says_so_in_one_line() -> None:
    if os.geteuid() != 0:
        proc = cli("up", "--dir", "/tmp/never", "s:server")
    else:
        proc = cli("up", "--dir", "/tmp/never", "s:server", user=65534)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        (
            "hydradeploy: error: lab: the lab needs root (it creates network and mount "
            "namespaces); run it as root"
        )
    ]


@pytest.mark.slow
def test_eight_hosts(lab_factory) -> None:
    specs = [HostSpec("s0", "server", gpus={"nvidia": 2})]
    specs += [
        HostSpec(f"a{i}", "agent", gpus={"amd": 1} if i % 2 else {})
        for i in range(1, 8)
    ]
    lab = lab_factory(specs)
    assert len(lab.hosts) == 8
    assert {n["metadata"]["name"] for n in lab.nodes()} == {s.name for s in specs}
    assert all(lab.node_ready(s.name) for s in specs)
    for name in lab.hosts:
        proc = subprocess.run(
            ["ssh", "-i", str(lab.key_path), "-o", "StrictHostKeyChecking=yes",
             "-o", f"UserKnownHostsFile={lab.known_hosts_path}", "-o", "BatchMode=yes",
             f"root@{lab.address(name)}", "cat /etc/hydra-lab"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert proc.stdout == f"{name}\n", proc.stderr
