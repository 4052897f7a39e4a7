"""Helpers for the secrets tests: real ed25519 keys (ssh-keygen), a throw-away copy of a
repository with its own inventory, and the real CLI run against it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str],
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`hydradeploy ARGS…` as a user runs it, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "hydradeploy", *args],
        cwd=cwd,
        env={**os.environ, **env},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def keygen(path: Path, comment: str) -> Path:
    """A real OpenSSH ed25519 key pair; returns the private key path."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        timeout=30,
    )
    return path


def pub(path: Path) -> str:
    return Path(f"{path}.pub").read_text().strip()


@dataclass
class Repo:
    """A scratch hydra repository: hosts/inventory.toml, secrets/, k8s/ under git."""

    root: Path
    keys: dict[str, Path] = field(default_factory=dict)

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def inventory(self) -> Path:
        return self.root / "hosts" / "inventory.toml"

    def cli(
        self, *args: str, env: Mapping[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        full = {
            "HYDRA_ROOT": str(self.root),
            "HOME": str(self.root / "home"),
            **(env or {}),
        }
        return run_cli(*args, cwd=self.root, env=full, input=input)

    def write_inventory(
        self,
        hosts: Mapping[str, str],
        *,
        admins: tuple[str, ...] = ("admin",),
        host_keys: Mapping[str, str] | None = None,
        extra_host: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """hosts: name -> role (the first server is cluster-init). Host keys come from
        self.keys unless host_keys overrides them ("" = no host_key)."""
        lines = ["[cluster]", 'name = "test"']
        admin_lines = ", ".join(f'"{pub(self.keys[a])}"' for a in admins)
        lines.append(f"admin_keys = [{admin_lines}]")
        init_done = False
        for i, (name, role) in enumerate(hosts.items()):
            lines += [
                "",
                f"[hosts.{name}]",
                f'address = "198.18.250.{i + 1}"',
                f'role = "{role}"',
            ]
            if role == "server" and not init_done:
                lines.append("cluster_init = true")
                init_done = True
            key = (host_keys or {}).get(
                name, pub(self.keys[name]) if name in self.keys else ""
            )
            if key:
                lines.append(f'ssh = {{ host_key = "{key}" }}')
            for k, v in (extra_host or {}).get(name, {}).items():
                lines.append(f"{k} = {v}")
        self.inventory.parent.mkdir(parents=True, exist_ok=True)
        self.inventory.write_text("\n".join(lines) + "\n")

    def snapshot(self) -> dict[str, bytes]:
        """Every file under secrets/ and its bytes, to prove nothing was rewritten."""
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.secrets.rglob("*"))
            if p.is_file()
        }


def age_decrypt(ciphertext: Path, identity: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["age", "-d", "-i", str(identity), str(ciphertext)],
        capture_output=True,
        timeout=30,
        check=False,
    )


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        timeout=30,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid",
            "PATH": "/usr/bin:/bin",
        },
    )
