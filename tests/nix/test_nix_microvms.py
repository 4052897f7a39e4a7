"""The microVM agents of the AMD host (modules/lib/microvms.nix)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from nixeval import EXAMPLE, LIB, load_expr, nix_eval, nix_str, requires_nix

pytestmark = requires_nix


@pytest.fixture(scope="module")
def guests() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = nix_eval(
        f'import {nix_str(LIB / "microvms.nix")} {{ inventory = {load_expr(EXAMPLE)}; host = "hydra-amd"; }}'
    )
    return result


def test_guests_and_addresses(guests: list[dict[str, Any]]) -> None:
    assert [(g["name"], g["address"], g["vcpu"], g["memory_mb"]) for g in guests] == [
        ("hydra-amd-vm1", "192.168.1.211", 4, 8192),
        ("hydra-amd-vm2", "192.168.1.212", 4, 8192),
    ]
    assert all(g["bridge"] == "br-hydra" and g["host"] == "hydra-amd" for g in guests)


def test_macs_and_taps_are_stable_unique_and_valid(
    guests: list[dict[str, Any]],
) -> None:
    macs = [g["mac"] for g in guests]
    taps = [g["tap"] for g in guests]
    assert len(set(macs)) == len(macs) and len(set(taps)) == len(taps)
    for mac in macs:
        assert re.fullmatch(r"02(:[0-9a-f]{2}){5}", mac), (
            mac
        )  # locally administered unicast
    for tap in taps:
        assert len(tap) <= 15 and tap.startswith("vm-")


def test_guests_run_k3s_agents_with_the_shared_token(
    guests: list[dict[str, Any]],
) -> None:
    for g in guests:
        assert g["k3s"]["role"] == "agent"
        assert g["k3s"]["serverAddr"] == "https://192.168.1.250:6443"
        assert g["k3s"]["nodeIP"] == g["address"]
        assert f"--token-file={g['guestTokenFile']}" in g["k3s"]["flags"]
        assert g["hostTokenFile"] == f"/run/hydra-microvm-secrets/{g['name']}/k3s-token"
        assert "hydra.io/microvm-host=hydra-amd" in g["k3s"]["nodeLabel"]


def test_hosts_without_guests_have_none() -> None:
    assert (
        nix_eval(
            f'import {nix_str(LIB / "microvms.nix")} {{ inventory = {load_expr(EXAMPLE)}; host = "hydra-ai"; }}'
        )
        == []
    )


def test_guests_get_an_nfs_client_when_the_cluster_has_nfs_storage(
    guests: list[dict[str, Any]],
) -> None:
    # issue 13, defect 6: pods on the guests mount the inventory's NFS exports
    assert all(g["nfsClient"] is True for g in guests)
    without_storage = nix_eval(
        f"""let inv = {load_expr(EXAMPLE)}; in
        map (g: g.nfsClient) (import {nix_str(LIB / "microvms.nix")} {{
          inventory = inv // {{ storage = {{ }}; }}; host = "hydra-amd"; }})"""
    )
    assert without_storage == [False, False]
