"""Run plain `nix-instantiate --eval --strict --json` (no nixpkgs) from the tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "modules" / "lib"
NIX_FLAGS = ["--option", "sandbox", "false", "--readonly-mode"]

requires_nix = pytest.mark.skipif(
    shutil.which("nix-instantiate") is None, reason="nix-instantiate is not installed"
)


def nix_eval(expr: str, *, timeout: float = 120) -> Any:
    """Evaluate a Nix expression strictly and return its JSON value."""
    env = {**os.environ, "NIX_PATH": ""}
    proc = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", *NIX_FLAGS, "-E", expr],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"nix-instantiate failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def nix_eval_error(expr: str, *, timeout: float = 120) -> str:
    """Evaluate an expression that must fail; return its error text."""
    proc = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", *NIX_FLAGS, "-E", expr],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NIX_PATH": ""},
        check=False,
    )
    assert proc.returncode != 0, f"evaluation unexpectedly succeeded: {proc.stdout}"
    return proc.stderr


def nix_str(path: Path) -> str:
    """A Nix path literal for an absolute path."""
    return f"(/. + {json.dumps(str(path))})"


EXAMPLE = REPO / "hosts" / "inventory.toml"
HA_EXAMPLE = REPO / "hosts" / "examples" / "ha-cluster.toml"


def load_expr(inventory: Path) -> str:
    """The Nix expression of a loaded (validated, defaults-filled) inventory."""
    return f"((import {nix_str(LIB / 'inventory.nix')}).load {nix_str(inventory)})"
