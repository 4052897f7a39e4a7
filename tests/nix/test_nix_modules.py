"""The module glue, evaluated with nixpkgs' module system (lib only, see
module-harness.nix): the values the hydra modules give the upstream options for the
example hosts. Needs a checkout of nixpkgs' lib/ (HYDRA_NIXPKGS_LIB=/path/to/lib, e.g.
from github:nix-community/nixpkgs.lib) and of the pinned agenix (HYDRA_AGENIX); skipped
without them. `nix flake check` evaluates
the real NixOS systems in CI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from nixeval import (
    EXAMPLE,
    HA_EXAMPLE,
    REPO,
    nix_eval,
    nix_eval_error,
    nix_str,
    requires_nix,
)

NIXPKGS_LIB = os.environ.get("HYDRA_NIXPKGS_LIB")
AGENIX = os.environ.get("HYDRA_AGENIX")
pytestmark = [
    requires_nix,
    pytest.mark.skipif(
        not NIXPKGS_LIB or not Path(NIXPKGS_LIB, "default.nix").exists(),
        reason="set HYDRA_NIXPKGS_LIB to a nixpkgs lib/ directory",
    ),
    pytest.mark.skipif(
        not AGENIX or not Path(AGENIX, "modules", "age.nix").exists(),
        reason="set HYDRA_AGENIX to a checkout of the pinned agenix",
    ),
]
HARNESS = Path(__file__).parent / "module-harness.nix"


def config_expr(
    inventory: Path, host: str, secrets: Path | None = None, extra: str = "[ ]"
) -> str:
    secrets_arg = f"secretsDir = {nix_str(secrets)};" if secrets else ""
    return (
        f"import {nix_str(HARNESS)} {{ lib = import {nix_str(Path(str(NIXPKGS_LIB)))}; "
        f'repo = {nix_str(REPO)}; inventoryFile = {nix_str(inventory)}; hostName = "{host}"; '
        f"{secrets_arg} extraModules = {extra}; agenix = {nix_str(Path(str(AGENIX)))}; }}"
    )


def pick(
    inventory: Path, host: str, fields: dict[str, str], **kw: Any
) -> dict[str, Any]:
    body = " ".join(f'"{k}" = c.{v};' for k, v in fields.items())
    result: dict[str, Any] = nix_eval(
        f"let c = {config_expr(inventory, host, **kw)}; in {{ {body} }}"
    )
    return result


@pytest.fixture(scope="module")
def secrets_with_token(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("secrets")
    (d / "k3s-token.age").write_text("age-encrypted stand-in\n")
    (d / "manifests").mkdir()
    (d / "manifests" / "hf-token.yaml.age").write_text("age-encrypted stand-in\n")
    return d


def test_cluster_init_server(secrets_with_token: Path) -> None:
    got = pick(
        EXAMPLE,
        "hydra-ai",
        {
            "k3s": "services.k3s",
            "fw": "networking.firewall",
            "age": "age.secrets",
            "nvidia": "hardware.nvidia.open",
            "cdi": "hardware.nvidia-container-toolkit",
            "drivers": "services.xserver.videoDrivers",
            "after": "systemd.services.k3s.after",
            "ssh": "services.openssh",
            "mounts": "fileSystems",
            "warnings": "warnings",
            "tmpfiles": "systemd.tmpfiles.settings",
            "assertions": "assertions",
        },
        secrets=secrets_with_token,
    )
    k3s = got["k3s"]
    assert (
        k3s["role"] == "server"
        and k3s["clusterInit"] is True
        and k3s["serverAddr"] == ""
    )
    assert k3s["tokenFile"] == "/run/agenix/k3s-token"
    assert k3s["nodeIP"] == "192.168.1.250" and k3s["nodeName"] == "hydra-ai"
    assert "hydra.io/gpu-count=2" in k3s["nodeLabel"]
    assert k3s["disable"] == ["traefik"]
    assert "--flannel-backend=vxlan" in k3s["extraFlags"]
    # every YAML under k8s/ is a manifest by source, never by content
    expected = sum(
        1 for p in (REPO / "k8s").rglob("*.y*ml") if p.name != "kustomization.yaml"
    )
    assert len(k3s["manifests"]) == expected
    assert all(set(m) == {"source", "target"} for m in k3s["manifests"].values())
    # the nvidia handler of k3s's own containerd, CDI mode: linked as
    # config-v3.toml.tmpl (the file k3s renders with its version-3 base), never through
    # services.k3s.containerdConfigTemplate (config.toml.tmpl, version 2); the template's
    # text is checked in test_nix_containerd_template.py
    assert "containerdConfigTemplate" not in k3s
    links = got["tmpfiles"]["10-hydra-containerd"]
    assert links == {
        "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl": {
            "L+": {"argument": "<pkgs.writeText config-v3.toml.tmpl>"}
        }
    }
    assert all(a["assertion"] for a in got["assertions"])
    assert got["cdi"] == {"enable": True, "device-name-strategy": "uuid"}
    assert got["nvidia"] is True and got["drivers"] == ["nvidia"]
    assert "nvidia-container-toolkit-cdi-generator.service" in got["after"]
    # the token and the Secret manifest come from agenix; the manifest lands in k3s's dir
    assert got["age"]["k3s-token"]["mode"] == "0400"
    secret = got["age"]["manifest-hf-token"]
    assert (
        secret["path"]
        == "/var/lib/rancher/k3s/server/manifests/hydra-secret-hf-token.yaml"
    )
    assert secret["symlink"] is False
    # firewall: server ports, vxlan, no etcd rules without other servers; SSH (22) is
    # opened by the sshd module itself (openFirewall)
    fw = got["fw"]
    assert sorted(fw["allowedTCPPorts"]) == [6443, 10250]
    assert fw["allowedUDPPorts"] == [8472]
    assert "extraCommands" not in fw
    assert got["ssh"]["settings"]["PasswordAuthentication"] is False
    assert got["ssh"]["openFirewall"] is True and got["ssh"]["ports"] == [22]
    assert got["mounts"]["/mnt/models"]["device"] == "192.168.1.244:/mnt/user/models"
    assert "ro" in got["mounts"]["/mnt/models"]["options"]
    assert got["warnings"] == []


def test_fresh_clone_without_secrets_still_evaluates(tmp_path: Path) -> None:
    got = pick(
        EXAMPLE,
        "hydra-compute",
        {
            "token": "services.k3s.tokenFile",
            "age": "age.secrets",
            "warnings": "warnings",
        },
        secrets=tmp_path,
    )
    assert got["token"] is None
    assert got["age"] == {}
    assert (
        len(got["warnings"]) == 1 and "hydradeploy secrets init" in got["warnings"][0]
    )


def test_agent_and_static_address(secrets_with_token: Path) -> None:
    got = pick(
        EXAMPLE,
        "hydra-compute",
        {
            "k3s": "services.k3s",
            "ifaces": "networking.interfaces",
            "gw": "networking.defaultGateway",
            "fw": "networking.firewall.allowedTCPPorts",
            "age": "age.secrets",
        },
        secrets=secrets_with_token,
        extra='[ { hydra.network = { interface = "enp5s0"; gateway = "192.168.1.1"; }; } ]',
    )
    k3s = got["k3s"]
    assert k3s["role"] == "agent" and k3s["serverAddr"] == "https://192.168.1.250:6443"
    assert "manifests" not in k3s or k3s["manifests"] == {}
    assert got["ifaces"] == {
        "enp5s0": {
            "ipv4": {"addresses": [{"address": "192.168.1.203", "prefixLength": 24}]}
        }
    }
    assert got["gw"] == "192.168.1.1"
    assert sorted(got["fw"]) == [10250]
    # agents decrypt only the token, never the Secret manifests
    assert list(got["age"]) == ["k3s-token"]


def test_amd_host_with_microvm_agents(secrets_with_token: Path) -> None:
    got = pick(
        EXAMPLE,
        "hydra-amd",
        {
            "initrd": "boot.initrd.kernelModules",
            "hsa": "environment.variables.HSA_OVERRIDE_GFX_VERSION",
            "opencl": "hardware.amdgpu.opencl.enable",
            "groups": "users.users.hydra.extraGroups",
            "nvidia": "services.k3s.containerdConfigTemplate or null",
            "vms": "microvm.vms",
            "age": "age.secrets",
            "net": "systemd.network",
            "host": "microvm.host.enable",
            "tmpfiles": "systemd.tmpfiles.rules",
        },
        secrets=secrets_with_token,
        extra='[ { hydra.network = { interface = "enp1s0"; gateway = "192.168.1.1"; }; } ]',
    )
    assert got["initrd"] == ["amdgpu"]
    assert got["hsa"] == "11.0.0" and got["opencl"] is True
    assert "render" in got["groups"] and "wheel" in got["groups"]
    assert got["nvidia"] is None
    assert got["host"] is True
    assert sorted(got["vms"]) == ["hydra-amd-vm1", "hydra-amd-vm2"]
    vm = got["vms"]["hydra-amd-vm1"]
    assert vm["autostart"] is True
    guest = vm["config"]
    assert guest["services"]["k3s"]["nodeIP"] == "192.168.1.211"
    # pods on the guest mount NFS: the guest enables NixOS's NFS client (issue 13, 6)
    assert guest["boot"]["supportedFilesystems"] == ["nfs"]
    assert guest["services"]["k3s"]["tokenFile"] == "/run/hydra-secrets/k3s-token"
    shares = {s["tag"]: s for s in guest["microvm"]["shares"]}
    assert (
        shares["hydra-secrets"]["source"] == "/run/hydra-microvm-secrets/hydra-amd-vm1"
    )
    assert shares["hydra-secrets"]["readOnly"] is True
    assert shares["ro-store"]["source"] == "/nix/store"
    assert guest["microvm"]["interfaces"][0]["type"] == "tap"
    volumes = {v["mountPoint"] for v in guest["microvm"]["volumes"]}
    assert volumes == {"/var/lib/rancher", "/var/lib/kubelet", "/etc/rancher"}
    assert (
        "/etc/rancher"
        in guest["systemd"]["services"]["k3s"]["unitConfig"]["RequiresMountsFor"]
    )
    assert guest["systemd"]["network"]["networks"]["10-uplink"]["address"] == [
        "192.168.1.211/24"
    ]
    # one decrypted copy of the token per guest, a real file in that guest's directory
    token = got["age"]["k3s-token-hydra-amd-vm2"]
    assert token["path"] == "/run/hydra-microvm-secrets/hydra-amd-vm2/k3s-token"
    assert token["symlink"] is False
    # the host address moves onto the bridge
    assert got["net"]["networks"]["20-br-hydra"]["address"] == ["192.168.1.210/24"]
    assert got["net"]["networks"]["10-uplink"]["networkConfig"]["Bridge"] == "br-hydra"
    assert (
        "d /run/hydra-microvm-secrets/hydra-amd-vm1 0700 root root -" in got["tmpfiles"]
    )


def test_ha_servers_open_etcd_only_to_each_other(secrets_with_token: Path) -> None:
    got = pick(
        HA_EXAMPLE,
        "cp2",
        {"k3s": "services.k3s", "fw": "networking.firewall"},
        secrets=secrets_with_token,
    )
    assert got["k3s"]["serverAddr"] == "https://10.0.0.11:6443"
    assert got["k3s"]["clusterInit"] is False
    rules = got["fw"]["extraCommands"].splitlines()
    assert rules == [
        "iptables -A nixos-fw -p tcp -s 10.0.0.11 --dport 2379:2380 -j nixos-fw-accept",
        "iptables -A nixos-fw -p tcp -s 10.0.0.13 --dport 2379:2380 -j nixos-fw-accept",
    ]
    assert 2379 not in got["fw"]["allowedTCPPorts"]


def test_ha_worker_taints(secrets_with_token: Path) -> None:
    got = pick(
        HA_EXAMPLE, "wk-gpu3", {"k3s": "services.k3s"}, secrets=secrets_with_token
    )
    assert got["k3s"]["nodeTaint"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert got["k3s"]["role"] == "agent"


def test_unknown_host_name_is_a_clear_error() -> None:
    err = nix_eval_error(f"({config_expr(EXAMPLE, 'nope')}).services.k3s.role")
    assert 'hydra.hostName = "nope" is not a host' in err


def test_microvm_host_without_nic_fails_with_a_reason(secrets_with_token: Path) -> None:
    got = nix_eval(
        f"map (a: a.message) (builtins.filter (a: !a.assertion) "
        f"({config_expr(EXAMPLE, 'hydra-amd', secrets=secrets_with_token)}).assertions)"
    )
    assert len(got) == 1 and "hydra.network.interface" in got[0]
    assert json.dumps(got)


def test_a_v2_template_beside_ours_is_refused(secrets_with_token: Path) -> None:
    # k3s would ignore config.toml.tmpl next to config-v3.toml.tmpl (config.go reads the
    # v3 file first): setting services.k3s.containerdConfigTemplate on a GPU host is an
    # evaluation error with the reason, not a template that silently does nothing
    extra = (
        '[ { services.k3s.containerdConfigTemplate = "{{ template \\"base\\" . }}"; } ]'
    )
    got = nix_eval(
        f"map (a: a.message) (builtins.filter (a: !a.assertion) "
        f"({config_expr(EXAMPLE, 'hydra-ai', secrets=secrets_with_token, extra=extra)}).assertions)"
    )
    assert len(got) == 1 and "config-v3.toml.tmpl" in got[0]
