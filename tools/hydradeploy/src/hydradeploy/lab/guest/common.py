"""Paths and small helpers shared by the host-side scripts of a lab closure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_DIR = Path("/run/hydra-lab")
K3S_PID = RUN_DIR / "k3s.pid"  # "PID CLOSURE" of the running simulated k3s
STATE_DIR = Path("/var/lib/hydra-lab")
ACTIVATIONS_LOG = STATE_DIR / "activations.log"
K3S_LOG = Path("/var/log/hydra-lab/k3s.log")
CURRENT_SYSTEM = Path("/run/current-system")
KUBECONFIG = Path("/etc/rancher/k3s/k3s.yaml")
SERVER_STATE = Path("/var/lib/rancher/k3s/server/lab-nodes.json")
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


def read_k3s_pid() -> tuple[int, str] | None:
    try:
        pid_text, _, closure = K3S_PID.read_text().strip().partition(" ")
        return int(pid_text), closure
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True when PID runs the simulated k3s (a recycled PID does not count)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"k3s-sim" not in cmdline:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def k3s_state() -> str:
    """systemd's ActiveState of k3s.service: active, inactive or failed."""
    entry = read_k3s_pid()
    if entry is None:
        return "inactive"
    return "active" if pid_alive(entry[0]) else "failed"


def stop_k3s() -> None:
    entry = read_k3s_pid()
    if entry is not None and pid_alive(entry[0]):
        pid = entry[0]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    K3S_PID.unlink(missing_ok=True)


def start_k3s(closure: Path, wait: bool = True) -> None:
    """Start the closure's simulated k3s as a detached daemon (like a systemd unit)."""
    settings = load_settings(closure)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    K3S_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(K3S_LOG, "ab") as log:
        proc = subprocess.Popen(
            [python(), "-I", "-B", str(closure / "lib" / "hydra-lab" / "k3s-sim"), str(closure)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    K3S_PID.write_text(f"{proc.pid} {closure}\n")
    if wait and settings["role"] == "server":
        # k3s server is a Type=notify unit: `systemctl start` returns once the API answers.
        wait_for_api(proc, timeout=15)


def wait_for_api(proc: subprocess.Popen[bytes], timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", API_PORT), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)


def log_activation(action: str, closure: Path, result: str) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(ACTIVATIONS_LOG, "a") as log:
        log.write(f"{now_iso()} {action} {closure} {result}\n")
