"""Every .nix file of the repository parses (`nix-instantiate --parse`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from nixeval import REPO, requires_nix

SKIP_DIRS = {".git", ".venv", "node_modules", "result"}


def nix_files() -> list[Path]:
    out = []
    for path in sorted(REPO.rglob("*.nix")):
        rel = path.relative_to(REPO)
        if not SKIP_DIRS.intersection(rel.parts):
            out.append(path)
    return out


def test_the_repository_has_the_flake_and_its_modules() -> None:
    rels = {str(p.relative_to(REPO)) for p in nix_files()}
    for expected in (
        "flake.nix",
        "modules/k3s.nix",
        "modules/containerd-nvidia.nix",
        "modules/amdgpu-rocm.nix",
        "modules/microvm-workers.nix",
        "modules/common.nix",
        "modules/secrets.nix",
        "modules/lib/inventory.nix",
    ):
        assert expected in rels


@requires_nix
@pytest.mark.parametrize("path", nix_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_parses(path: Path) -> None:
    proc = subprocess.run(
        ["nix-instantiate", "--parse", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
