"""bin/switch-to-configuration of a lab closure: switch | boot | test | dry-activate.

Like NixOS's, it never touches the system profile (the deployer sets it with nix-env).
The closure's etc/hydra-k3s.json may carry a fault, injected on purpose:
activation (fails half-way), network (cuts the host's own link after activating),
join / labels / gpus (handled by the simulated k3s).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from . import common, k3s_deploy

USAGE = "Usage: switch-to-configuration [switch|boot|test|dry-activate]"


def point_current_system(closure: Path) -> None:
    """Atomically repoint /run/current-system (symlink then rename, as NixOS does)."""
    tmp = common.CURRENT_SYSTEM.with_name(".current-system.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(closure, tmp)
    os.replace(tmp, common.CURRENT_SYSTEM)


def dry_activate(closure: Path) -> int:
    settings = common.load_settings(closure)
    try:
        current = common.CURRENT_SYSTEM.resolve(strict=True)
    except OSError:
        current = None
    print(f"would activate the configuration {closure}")
    if current == closure:
        print("the configuration is already active; no units would change")
        return 0
    running = common.read_k3s_pid()
    if running is None or running[1] != str(closure):
        print(f"would restart the following units: k3s.service ({settings['role']})")
    print(f"would bring up the network interface {settings['interface']}")
    return 0


def main(closure: Path, argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("switch", "boot", "test", "dry-activate"):
        print(USAGE, file=sys.stderr)
        return 1
    action = argv[0]
    if os.geteuid() != 0:
        print("switch-to-configuration: must run as root", file=sys.stderr)
        return 1
    if action == "dry-activate":
        return dry_activate(closure)
    # One activation at a time, as NixOS's switch-to-configuration lock does (a deploy
    # and a rollback watchdog may race).
    common.RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(common.RUN_DIR / "switch-to-configuration.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return activate(closure, action)


def activate(closure: Path, action: str) -> int:
    settings = common.load_settings(closure)
    if action == "boot":
        print("lab host: no boot loader to update; recorded the boot entry")
        common.log_activation(action, closure, "ok")
        return 0

    fault = settings.get("fault")
    print(f"activating the configuration {closure}...", flush=True)
    point_current_system(closure)
    if fault == "activation":
        # Half-way: the activation script ran, units were stopped, then a snippet failed.
        common.stop_k3s()
        print(
            "error: activation script snippet 'hydra-lab-fault' failed (exit status 1); "
            "k3s.service was stopped",
            file=sys.stderr,
        )
        common.log_activation(action, closure, "failed")
        return 1
    print("setting up network interfaces...", flush=True)
    common.set_link(settings["interface"], up=True)
    k3s_deploy.link_manifests(closure)  # systemd-tmpfiles --create for the k3s manifests
    running = common.read_k3s_pid()
    if running is None or running[1] != str(closure) or not common.pid_alive(running[0]):
        print("restarting the following units: k3s.service", flush=True)
        common.stop_k3s()
        common.start_k3s(closure)
    if fault == "network":
        # The classic lock-out: a bad interface/firewall change takes the host offline.
        common.set_link(settings["interface"], up=False)
    common.log_activation(action, closure, "ok")
    return 0
