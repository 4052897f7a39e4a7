"""Paths and small helpers shared by the host-side scripts of a lab closure."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_DIR = Path("/run/hydra-lab")
STATE_DIR = Path("/var/lib/hydra-lab")
ACTIVATIONS_LOG = STATE_DIR / "activations.log"
CURRENT_SYSTEM = Path("/run/current-system")
# Where k3s writes the admin kubeconfig by default. Not verified: the stored k3s
# pkg/cli/cmds/server.go (@005499a940ea) declares `--write-kubeconfig` without its default.
KUBECONFIG = Path("/etc/rancher/k3s/k3s.yaml")
SERVER_STATE = Path("/var/lib/rancher/k3s/server/lab-nodes.json")  # the lab's own file
# upstream: k3s pkg/cli/cmds/server.go @005499a940ea, `https-listen-port` Value 6443 (the
# lab serves its API there over plain HTTP).
API_PORT = 6443


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_settings(closure: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((closure / "etc" / "hydra-k3s.json").read_text())
    return data


def python() -> str:
    """The interpreter the closure's scripts were written for (their shebang)."""
    return sys.executable


def ip_binary() -> str:
    return shutil.which("ip") or "/usr/sbin/ip"


def set_link(interface: str, up: bool) -> None:
    subprocess.run(
        [ip_binary(), "link", "set", "dev", interface, "up" if up else "down"],
        check=False,
        timeout=10,
        stdout=subprocess.DEVNULL,
    )


def log_activation(action: str, closure: Path, result: str) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(ACTIVATIONS_LOG, "a") as log:
        log.write(f"{now_iso()} {action} {closure} {result}\n")
