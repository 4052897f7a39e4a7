"""The runner's Nix store, one small typed function per nix command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hydradeploy.errors import OperationFailed

SYSTEM_PROFILE = "/nix/var/nix/profiles/system"


def _nix(argv: list[str], input: bytes | None = None, timeout: float = 120) -> bytes:
    proc = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise OperationFailed(f"lab: {' '.join(argv[:2])}: {err[-1] if err else 'failed'}")
    return proc.stdout


def add(path: Path) -> str:
    """`nix-store --add PATH`: the directory becomes a content-addressed store path."""
    return _nix(["nix-store", "--add", str(path)]).decode().strip()


def requisites(store_path: str) -> list[str]:
    return _nix(["nix-store", "--query", "--requisites", store_path]).decode().split()


def export(paths: list[str]) -> bytes:
    """A `nix-store --export` archive of PATHS, to `nix-store --import` in a host."""
    return _nix(["nix-store", "--export", *paths])
