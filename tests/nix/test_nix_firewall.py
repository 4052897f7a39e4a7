"""Firewall ports per role and flannel backend (modules/lib/firewall.nix)."""

from __future__ import annotations

from typing import Any

import pytest
from nixeval import LIB, nix_eval, nix_eval_error, nix_str, requires_nix

pytestmark = requires_nix
ROLES = ("server", "agent")
BACKENDS = ("vxlan", "host-gw", "wireguard-native", "none")


@pytest.fixture(scope="module")
def matrix() -> dict[str, Any]:
    fw = nix_str(LIB / "firewall.nix")
    body = " ".join(
        f'"{role}/{backend}/{etcd}" = import {fw} {{ role = "{role}"; flannelBackend = "{backend}"; '
        f'embeddedEtcd = {etcd}; peers = [ "10.0.0.12" "fd00::13" ]; }};'
        for role in ROLES
        for backend in BACKENDS
        for etcd in ("true", "false")
    )
    result: dict[str, Any] = nix_eval(f"{{ {body} }}")
    return result


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("etcd", ["true", "false"])
def test_ports(matrix: dict[str, Any], role: str, backend: str, etcd: str) -> None:
    fw = matrix[f"{role}/{backend}/{etcd}"]
    tcp = [6443, 10250] if role == "server" else [10250]
    assert fw["allowedTCPPorts"] == tcp
    assert fw["allowedUDPPorts"] == ([8472] if backend == "vxlan" else [])
    assert fw["allowedUDPPortRanges"] == (
        [{"from": 51820, "to": 51821}] if backend == "wireguard-native" else []
    )
    # etcd is never opened to everyone, only to the other servers
    assert 2379 not in fw["allowedTCPPorts"] and 2380 not in fw["allowedTCPPorts"]
    if role == "server" and etcd == "true":
        assert fw["iptablesCommands"] == [
            "iptables -A nixos-fw -p tcp -s 10.0.0.12 --dport 2379:2380 -j nixos-fw-accept",
            "ip6tables -A nixos-fw -p tcp -s fd00::13 --dport 2379:2380 -j nixos-fw-accept",
        ]
        assert fw["nftablesRules"] == [
            "ip saddr 10.0.0.12 tcp dport 2379-2380 accept",
            "ip6 saddr fd00::13 tcp dport 2379-2380 accept",
        ]
    else:
        assert fw["iptablesCommands"] == [] and fw["nftablesRules"] == []


def test_seed_mistake_host_gw_opens_no_udp(matrix: dict[str, Any]) -> None:
    for role in ROLES:
        fw = matrix[f"{role}/host-gw/true"]
        assert fw["allowedUDPPorts"] == [] and fw["allowedUDPPortRanges"] == []
        assert 10251 not in fw["allowedTCPPorts"] and 10252 not in fw["allowedTCPPorts"]


def test_unknown_backend_is_refused() -> None:
    err = nix_eval_error(
        f'(import {nix_str(LIB / "firewall.nix")} {{ role = "server"; flannelBackend = "calico"; }}).allowedTCPPorts'
    )
    assert "assertion" in err
