"""The lab itself, against a module-scoped lab of three hosts: real SSH with host-key
checking, separate Nix stores, nix copy, profile generations, simulated k3s."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hydradeploy.inventory import load_inventory
from hydradeploy.lab import HostSpec, Lab

pytestmark = pytest.mark.lab

SPECS = [
    HostSpec("srv", "server", gpus={"nvidia": 2}),
    HostSpec("w1", "agent", gpus={"nvidia": 2}, labels={"hydra.io/gpu-class": "gen"}),
    HostSpec(
        "edge", "agent", gpus={"amd": 1}, taints=("hydra.io/edge=true:NoSchedule",)
    ),
]


@pytest.fixture(scope="module")
def lab(lab_factory) -> Lab:
    return lab_factory(SPECS)


def ssh(lab: Lab, host: str, command: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(lab.key_path), "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={lab.known_hosts_path}", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=5", f"root@{lab.address(host)}", command],
        capture_output=True, text=True, timeout=30, check=False, **kw,
    )  # fmt: skip


def kubectl_json(lab: Lab, *args: str) -> dict:
    proc = lab.run("srv", ["k3s", "kubectl", "get", *args, "-o", "json"])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_inventory_is_valid_and_points_at_the_lab(lab: Lab) -> None:
    inv = load_inventory(lab.inventory_path)
    assert list(inv.hosts) == ["srv", "w1", "edge"]
    assert inv.cluster_init.name == "srv"
    for host in inv.hosts.values():
        assert host.address.startswith("198.1")
        assert host.ssh.user == "root"
        assert host.ssh.key == lab.key_path
        assert host.ssh.known_hosts == lab.known_hosts_path
        assert host.ssh.host_key and host.ssh.host_key.startswith("ssh-ed25519 ")
    assert inv.host("edge").taints == ("hydra.io/edge=true:NoSchedule",)
    assert inv.cluster.api_endpoint == f"https://{lab.address('srv')}:6443"


def test_ssh_with_host_key_checking_sees_a_lab_host(lab: Lab) -> None:
    for name in lab.hosts:
        proc = ssh(
            lab,
            name,
            "hostname; cat /etc/hydra-lab; echo $PATH; readlink /run/current-system",
        )
        assert proc.returncode == 0, proc.stderr
        hostname, marker, path, current = proc.stdout.split("\n")[:4]
        assert hostname == marker == name
        assert path.startswith("/run/current-system/sw/bin:")
        assert current.startswith("/nix/store/") and f"nixos-system-{name}-" in current


def test_ssh_refuses_a_host_whose_key_does_not_match(lab: Lab, tmp_path: Path) -> None:
    # srv's address with w1's key: strict checking must refuse the connection.
    lines = lab.known_hosts_path.read_text().splitlines()
    w1_key = next(line for line in lines if line.startswith("w1,")).split(" ", 1)[1]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{lab.address('srv')} {w1_key}\n")
    proc = subprocess.run(
        ["ssh", "-i", str(lab.key_path), "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={wrong}", "-o", "BatchMode=yes",
         f"root@{lab.address('srv')}", "true"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 255
    assert (
        "HOST IDENTIFICATION HAS CHANGED" in proc.stderr
        or "verification failed" in proc.stderr
    )


def test_host_private_key_is_the_hosts_own(lab: Lab) -> None:
    pubs = set()
    for name in lab.hosts:
        proc = lab.run(
            name, ["ssh-keygen", "-y", "-f", "/etc/ssh/ssh_host_ed25519_key"]
        )
        assert proc.returncode == 0, proc.stderr
        pub = " ".join(proc.stdout.split()[:2])
        assert pub == load_inventory(lab.inventory_path).host(name).ssh.host_key
        pubs.add(pub)
    assert len(pubs) == 3


def test_fabric_connects_with_the_known_hosts_file(lab: Lab) -> None:
    fabric = pytest.importorskip("fabric")
    paramiko = pytest.importorskip("paramiko")
    client_config = {"key_filename": str(lab.key_path), "look_for_keys": False,
                     "allow_agent": False}  # fmt: skip
    conn = fabric.Connection(lab.address("w1"), user="root", connect_kwargs=client_config,
                             connect_timeout=10)  # fmt: skip
    conn.client.load_host_keys(str(lab.known_hosts_path))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        result = conn.run(
            "cat /etc/hydra-lab && systemctl is-active k3s",
            hide=True,
            timeout=20,
            in_stream=False,
        )
    finally:
        conn.close()
    assert result.stdout.split() == ["w1", "active"]


def test_stores_are_separate_and_nix_copy_reaches_one_host(
    lab: Lab, tmp_path: Path
) -> None:
    payload = tmp_path / f"lab-copy-{os.getpid()}"
    payload.mkdir()
    (payload / "data").write_text("copied by the test\n")
    path = subprocess.run(["nix-store", "--add", str(payload)], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()  # fmt: skip
    env = {**os.environ, "NIX_SSHOPTS": f"-i {lab.key_path} -o StrictHostKeyChecking=yes "
           f"-o UserKnownHostsFile={lab.known_hosts_path} -o BatchMode=yes"}  # fmt: skip
    proc = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command", "copy", "--to",
         f"ssh://root@{lab.address('w1')}", path],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert lab.run("w1", ["cat", f"{path}/data"]).stdout == "copied by the test\n"
    assert lab.run("w1", ["nix-store", "--check-validity", path]).returncode == 0
    assert lab.run("edge", ["test", "-e", path]).returncode == 1
    assert lab.run("edge", ["nix-store", "--check-validity", path]).returncode != 0


def test_profile_generations_switch_and_roll_back(lab: Lab) -> None:
    gen1 = lab.run(
        "edge", ["readlink", "-f", "/nix/var/nix/profiles/system"]
    ).stdout.strip()
    new = lab.closure("edge")
    assert new != gen1
    archive = subprocess.run(["nix-store", "--export", new], capture_output=True, check=True,
                             timeout=60).stdout  # fmt: skip
    assert lab._exec("edge", ["nix-store", "--import"], input=archive).returncode == 0
    profile = "/nix/var/nix/profiles/system"
    assert lab.run("edge", ["nix-env", "-p", profile, "--set", new]).returncode == 0
    listing = lab.run("edge", ["nix-env", "-p", profile, "--list-generations"]).stdout
    assert [line.split()[0] for line in listing.splitlines()] == ["1", "2"]
    assert "(current)" in listing.splitlines()[1]
    assert lab.run("edge", ["nix-env", "-p", profile, "--rollback"]).returncode == 0
    assert lab.run("edge", ["readlink", "-f", profile]).stdout.strip() == gen1


def test_server_reports_every_node_ready_with_the_real_shape(lab: Lab) -> None:
    doc = kubectl_json(lab, "nodes")
    assert doc["kind"] == "List"
    nodes = {n["metadata"]["name"]: n for n in doc["items"]}
    assert set(nodes) == {"srv", "w1", "edge"}
    srv, w1, edge = nodes["srv"], nodes["w1"], nodes["edge"]
    assert srv["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "true"
    assert srv["metadata"]["labels"]["node-role.kubernetes.io/etcd"] == "true"
    assert "node-role.kubernetes.io/control-plane" not in w1["metadata"]["labels"]
    assert w1["metadata"]["labels"]["hydra.io/gpu-class"] == "gen"
    assert w1["metadata"]["labels"]["kubernetes.io/hostname"] == "w1"
    assert w1["status"]["allocatable"]["nvidia.com/gpu"] == "2"
    assert edge["status"]["capacity"]["amd.com/gpu"] == "1"
    assert edge["spec"]["taints"] == [
        {"key": "hydra.io/edge", "value": "true", "effect": "NoSchedule"}
    ]
    for node in nodes.values():
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True"
        assert node["status"]["nodeInfo"]["kubeletVersion"].endswith("+k3s1")


def test_kubectl_answers_like_kubectl(lab: Lab) -> None:
    one = kubectl_json(lab, "node", "w1")
    assert one["kind"] == "Node" and one["metadata"]["name"] == "w1"
    missing = lab.run("srv", ["k3s", "kubectl", "get", "node", "nope", "-o", "json"])
    assert missing.returncode == 1
    assert (
        missing.stderr.strip() == 'Error from server (NotFound): nodes "nope" not found'
    )
    readyz = lab.run("srv", ["k3s", "kubectl", "get", "--raw", "/readyz"])
    assert (readyz.returncode, readyz.stdout) == (0, "ok")
    addons = kubectl_json(lab, "addons", "-A")
    assert {"coredns", "traefik"} <= {a["metadata"]["name"] for a in addons["items"]}
    version = lab.run("srv", ["k3s", "--version"]).stdout
    assert version.startswith("k3s version v1.")
    agent = lab.run("w1", ["k3s", "kubectl", "get", "nodes"])
    assert agent.returncode == 1 and "k3s.yaml" in agent.stderr


def test_pid1_is_systemd_the_system_runs_and_k3s_and_ssh_are_real_units(
    lab: Lab,
) -> None:
    for name in lab.hosts:
        comm = lab.run(name, ["cat", "/proc/1/comm"]).stdout.strip()
        assert comm == "systemd", name
        running = lab.run(name, ["systemctl", "is-system-running"])
        assert (running.returncode, running.stdout.strip()) == (0, "running"), name
        for unit in ("k3s.service", "ssh.service"):
            show = lab.run(
                name,
                ["systemctl", "show", "-p", "ActiveState,MainPID,FragmentPath", unit],
            ).stdout
            facts = dict(line.split("=", 1) for line in show.splitlines())
            assert facts["ActiveState"] == "active", (name, unit, facts)
            assert int(facts["MainPID"]) > 1, (name, unit, facts)
    # k3s.service comes from the closure (installed by its switch-to-configuration), a
    # server's as Type=notify and an agent's as Type=exec, as nixpkgs' k3s module has it.
    closure = lab.run("w1", ["readlink", "/run/current-system"]).stdout.strip()
    fragment = lab.run(
        "w1", ["readlink", "-f", "/run/systemd/system/k3s.service"]
    ).stdout
    assert fragment.strip() == f"{closure}/etc/systemd/system/k3s.service"
    kinds = {n: lab.run(n, ["systemctl", "show", "-p", "Type", "--value", "k3s"]).stdout.strip()
             for n in ("srv", "w1")}  # fmt: skip
    assert kinds == {"srv": "notify", "w1": "exec"}
    # The deploy's guard runs as a transient unit: systemd-run is real here.
    unit = lab.run("w1", ["systemd-run", "--wait", "--quiet", "--collect", "/bin/true"])
    assert unit.returncode == 0, unit.stderr
    assert (
        lab.run("w1", ["sh", "-c", "command -v systemctl"]).stdout.strip()
        == "/usr/bin/systemctl"
    )
    version = lab.run("w1", ["nixos-version"])
    assert (version.returncode, version.stdout) == (0, "26.05.lab1\n")


def test_generation_one_is_booted_current_and_in_the_profile(lab: Lab) -> None:
    for name in lab.hosts:
        booted = lab.run(name, ["readlink", "/run/booted-system"]).stdout.strip()
        current = lab.run(name, ["readlink", "/run/current-system"]).stdout.strip()
        profile = lab.run(
            name, ["readlink", "/nix/var/nix/profiles/system"]
        ).stdout.strip()
        assert booted == current and profile == "system-1-link"
        log = lab.run(
            name, ["cat", "/var/lib/hydra-lab/activations.log"]
        ).stdout.splitlines()
        assert log[0].split()[1:] == ["switch", current, "ok"]


def test_the_k3s_token_is_on_the_host_not_in_the_store(lab: Lab) -> None:
    import urllib.error
    import urllib.request

    token = lab.run("w1", ["cat", "/var/lib/hydra-lab/k3s-token"]).stdout.strip()
    assert len(token) == 64
    mode = lab.run(
        "w1", ["stat", "-c", "%a", "/var/lib/hydra-lab/k3s-token"]
    ).stdout.strip()
    assert mode == "600"
    closure = lab.run("w1", ["readlink", "/run/current-system"]).stdout.strip()
    found = lab.run("w1", ["grep", "-r", "-l", token, closure])
    assert found.returncode == 1, found.stdout  # not in any file of the closure
    # The server refuses a node that does not know the token.
    req = urllib.request.Request(
        f"http://{lab.address('srv')}:6443/lab/v1/heartbeat", data=b'{"nodes": []}',
        method="POST", headers={"Authorization": "Bearer wrong"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 401
