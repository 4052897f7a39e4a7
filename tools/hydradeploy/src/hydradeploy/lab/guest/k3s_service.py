"""ExecStart of the lab's k3s.service: runs the simulated k3s of the closure it was
started from, and tells systemd when it is up.

nixpkgs nixos/modules/services/cluster/rancher/default.nix (commit 011c1bdb102b) makes
k3s `Type = if cfg.role == "agent" then "exec" else "notify"`: a server's start job
ends when k3s sends READY=1 (k3s does so once its API serves). Here the server sends
READY=1 (sd_notify protocol: a datagram to $NOTIFY_SOCKET, systemd's sd_notify(3)) once
its API port accepts connections.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

from . import common, k3s_sim


def notify_ready_when_serving(timeout: float = 60) -> None:
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", common.API_PORT), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    address = "\0" + target[1:] if target.startswith("@") else target
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", address)


def main(closure: Path) -> int:
    settings = common.load_settings(closure)
    if settings.get("fault") == "crash":
        # The lab's `crash` fault: k3s exits at once, as it does on a config it rejects;
        # systemd restarts it every RestartSec (Restart=always), forever failing.
        print('level=fatal msg="hydra lab fault: crash (k3s exits at start)"', flush=True)
        return 1
    if settings["role"] == "server":
        threading.Thread(target=notify_ready_when_serving, daemon=True).start()
    return k3s_sim.main(closure)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
