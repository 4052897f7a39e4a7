"""flake.lock is a well-formed version-7 lock for exactly the inputs flake.nix declares,
with locked revisions and NAR hashes, and versions.py agrees with the Nix side."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hydradeploy.versions import KUBERNETES_VERSION
from nixeval import LIB, REPO, nix_eval, nix_str, requires_nix

LOCK: dict[str, Any] = json.loads((REPO / "flake.lock").read_text())
FLAKE = (REPO / "flake.nix").read_text()


def test_lock_version_and_root() -> None:
    assert LOCK["version"] == 7
    assert LOCK["root"] == "root"
    assert set(LOCK["nodes"]["root"]["inputs"]) == {"nixpkgs", "microvm", "agenix"}


def test_every_input_of_flake_nix_is_locked() -> None:
    declared = set(
        re.findall(r"^    ([a-z][a-z0-9-]*)(?:\.url)? = ", FLAKE, re.MULTILINE)
    )
    assert declared == set(LOCK["nodes"]["root"]["inputs"])


def test_nixpkgs_follows_and_disabled_inputs() -> None:
    nodes = LOCK["nodes"]
    assert nodes["microvm"]["inputs"]["nixpkgs"] == ["nixpkgs"]
    assert nodes["agenix"]["inputs"]["nixpkgs"] == ["nixpkgs"]
    # darwin and home-manager are cut off (`follows = ""`), they have no node
    assert nodes["agenix"]["inputs"]["darwin"] == []
    assert nodes["agenix"]["inputs"]["home-manager"] == []


def referenced_nodes() -> set[str]:
    out: set[str] = set()
    for node in LOCK["nodes"].values():
        for ref in node.get("inputs", {}).values():
            if isinstance(ref, str):
                out.add(ref)
    return out


def test_every_reference_resolves_and_nothing_dangles() -> None:
    nodes = set(LOCK["nodes"])
    assert referenced_nodes() <= nodes
    assert nodes - {"root"} == referenced_nodes()


@pytest.mark.parametrize("name", sorted(set(LOCK["nodes"]) - {"root"}))
def test_locked_node_is_pinned(name: str) -> None:
    locked = LOCK["nodes"][name]["locked"]
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
    assert (
        isinstance(locked["lastModified"], int)
        and locked["lastModified"] > 1_600_000_000
    )
    algo, _, digest = locked["narHash"].partition("-")
    assert algo == "sha256"
    assert len(base64.b64decode(digest, validate=True)) == 32


def test_nixpkgs_is_the_stable_release() -> None:
    assert LOCK["nodes"]["nixpkgs"]["original"]["ref"] == "nixos-26.05"
    assert 'nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05"' in FLAKE


@requires_nix
def test_kubernetes_version_seen_by_nix_is_versions_py() -> None:
    versions_py = REPO / "tools" / "hydradeploy" / "src" / "hydradeploy" / "versions.py"
    minor = nix_eval(
        f"import {nix_str(LIB / 'kubernetes-version.nix')} {nix_str(versions_py)}"
    )
    assert minor == ".".join(KUBERNETES_VERSION.split(".")[:2])


def test_kubernetes_version_is_in_the_supported_k3s_range() -> None:
    from hydradeploy.versions import K3S_SUPPORTED

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    first, end = K3S_SUPPORTED
    assert key(first) <= key(KUBERNETES_VERSION) < key(end)
    # one minor: a release branch keeps its k3s minor (versions.py says where from)
    assert key(end)[:2] == (key(first)[0], key(first)[1] + 1)
