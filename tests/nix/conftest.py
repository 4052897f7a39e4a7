"""Fixtures for the tests of the Nix side (plain nix-instantiate, no nixpkgs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nixeval import LIB, REPO, nix_eval, nix_str

EXAMPLE = REPO / "hosts" / "inventory.toml"
HA_EXAMPLE = REPO / "hosts" / "examples" / "ha-cluster.toml"


def load_expr(inventory: Path) -> str:
    return f"((import {nix_str(LIB / 'inventory.nix')}).load {nix_str(inventory)})"


@pytest.fixture(scope="session")
def example() -> dict[str, Any]:
    """The example cluster as the flake sees it (inventory.nix `build`)."""
    result: dict[str, Any] = nix_eval(load_expr(EXAMPLE))
    return result


@pytest.fixture(scope="session")
def ha_example() -> dict[str, Any]:
    result: dict[str, Any] = nix_eval(load_expr(HA_EXAMPLE))
    return result
