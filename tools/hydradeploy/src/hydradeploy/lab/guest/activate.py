"""bin/switch-to-configuration of a lab closure: check | switch | boot | test | dry-activate.

Like NixOS's, it never touches the system profile (the deployer sets it with nix-env),
and it drives the host's real systemd: it installs the closure's units, reloads systemd,
then stops removed units, restarts changed ones and starts new or stopped ones — only a
unit whose file changed is restarted (units.py says which rule comes from where). The
closure's etc/ssh/sshd_config is installed too; a changed one restarts ssh.service.

Units are installed as runtime units (/run/systemd/system, emptied at every boot) rather
than in /etc as on NixOS: the lab's /etc is Debian's, and at boot the profile's closure
installs its units again (hydra-lab-activate.service, see lab/hostfs.py), the way a
NixOS boot activates the generation the boot loader chose.

The closure's etc/hydra-k3s.json may carry a fault, injected on purpose: activation
(fails half-way), network (cuts the host's own link after activating), sshd (an sshd
configuration sshd rejects), crash (k3s exits at start), join / labels / gpus (handled
by the simulated k3s).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from . import common, k3s_deploy, units

# upstream: main.rs @00401fd7e581 (`usage`, `main`): an unknown or missing action prints
# this and exits 1; not root: "… must be run as the root user", exit 1 (anyhow error).
USAGE = "Usage: switch-to-configuration [check|switch|boot|test|dry-activate]"
ACTIONS = ("check", "switch", "boot", "test", "dry-activate")
RUNTIME_UNITS = Path("/run/systemd/system")
WANTS = RUNTIME_UNITS / "multi-user.target.wants"
SSHD_CONFIG = Path("/etc/ssh/sshd_config")
SYSTEMCTL = "/usr/bin/systemctl"  # Debian's, the host's real systemd
LOCK = Path("/run/nixos/switch-to-configuration.lock")  # main.rs, see `main`
# upstream: nixpkgs pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs @00401fd7e581
# (`do_system_switch`): the activation script failing sets exit code 2 ("Failed to run
# activate script") and the switch goes on; a unit that failed prints "warning: the
# following units failed: …" and sets 4; the exit code is the last one set.
ACTIVATION_FAILED = 2
UNITS_FAILED = 4
GERUND = {"stop": "stopping", "restart": "restarting", "start": "starting"}


def point_current_system(closure: Path) -> None:
    """Atomically repoint /run/current-system (symlink then rename, as NixOS does)."""
    tmp = common.CURRENT_SYSTEM.with_name(".current-system.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(closure, tmp)
    os.replace(tmp, common.CURRENT_SYSTEM)


def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYSTEMCTL, *args], capture_output=True, text=True, timeout=120, check=False
    )


def active_state(unit: str) -> str:
    return systemctl("is-active", unit).stdout.strip() or "unknown"


def new_units(closure: Path) -> dict[str, Path]:
    unit_dir = closure / "etc" / "systemd" / "system"
    return {p.name: p for p in sorted(unit_dir.glob("*.service"))}


def installed_units() -> dict[str, Path]:
    """Runtime units a closure installed (symlinks into the store)."""
    found = {}
    for link in sorted(RUNTIME_UNITS.glob("*.service")):
        if link.is_symlink() and os.readlink(link).startswith("/nix/store/"):
            found[link.name] = link
    return found


def plan(closure: Path) -> tuple[list[str], list[str], list[str], bool]:
    """(stop, restart, start, ssh_config_changed) for switching to CLOSURE."""
    new, old = new_units(closure), installed_units()
    stop = [u for u in old if u not in new]
    restart: list[str] = []
    start: list[str] = []
    for name, path in new.items():
        current = units.parse_file(RUNTIME_UNITS / name) if name in old else None
        state = active_state(name)
        if current is not None and not units.equal(current, units.parse(path.read_text())):
            (restart if state in ("active", "activating", "reloading") else start).append(name)
        elif state not in ("active", "activating", "reloading"):
            # A new unit, or an unchanged one that is stopped or failed: NixOS's switch
            # starts every active target again, which starts the units they want.
            start.append(name)
    return stop, restart, start, _sshd_config_changes(closure)


def _sshd_config_changes(closure: Path) -> bool:
    new = closure / "etc" / "ssh" / "sshd_config"
    try:
        return new.read_bytes() != SSHD_CONFIG.read_bytes()
    except FileNotFoundError:
        return new.exists()


def install_units(closure: Path) -> None:
    new = new_units(closure)
    WANTS.mkdir(parents=True, exist_ok=True)
    for name in installed_units():
        if name not in new:
            (RUNTIME_UNITS / name).unlink(missing_ok=True)
            (WANTS / name).unlink(missing_ok=True)
    for name, path in new.items():
        for link, target in ((RUNTIME_UNITS / name, str(path)), (WANTS / name, f"../{name}")):
            tmp = link.with_name(f".{name}.tmp")
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp)
            os.replace(tmp, link)


def install_sshd_config(closure: Path) -> None:
    tmp = SSHD_CONFIG.with_name(".sshd_config.tmp")
    tmp.write_bytes((closure / "etc" / "ssh" / "sshd_config").read_bytes())
    os.replace(tmp, SSHD_CONFIG)


def dry_activate(closure: Path) -> int:
    settings = common.load_settings(closure)
    stop, restart, start, ssh_changed = plan(closure)
    if ssh_changed:
        restart.append("ssh.service")

    def would(verb: str, names: list[str]) -> None:
        if names:
            listed = ", ".join(sorted(names, key=str.lower))
            print(f"would {verb} the following units: {listed}", file=sys.stderr)

    # main.rs @00401fd7e581, dry-activate: on stderr "would stop …", "would activate the
    # configuration...", "would restart …", "would start …", then exit 0.
    would("stop", stop)
    print("would activate the configuration...", file=sys.stderr)
    print(f"would bring up the network interface {settings['interface']}", file=sys.stderr)
    would("restart", restart)
    would("start", start)
    return 0


def main(closure: Path, argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ACTIONS:
        print(USAGE, file=sys.stderr)
        return 1
    action = argv[0]
    if os.geteuid() != 0:
        print("Error: switch-to-configuration must be run as the root user", file=sys.stderr)
        return 1
    # One activation at a time. upstream: nixpkgs pkgs/by-name/sw/switch-to-configuration-ng/
    # src/src/main.rs @00401fd7e581 (`do_system_switch`): /run/nixos (0755), then
    # `Flock::lock(…/switch-to-configuration.lock, LockExclusiveNonblock)`; a held lock
    # is "Could not acquire lock" and `die()`, whose exit code is errno (EWOULDBLOCK).
    LOCK.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            print("Could not acquire lock", file=sys.stderr)
            return exc.errno or 1
        if action == "check":  # main.rs: pre-switch checks only; a lab closure has none
            return 0
        if action == "dry-activate":  # main.rs takes the lock for every action
            return dry_activate(closure)
        return activate(closure, action)


def activate(closure: Path, action: str) -> int:
    settings = common.load_settings(closure)
    if action == "boot":
        # NixOS installs the boot loader here; a lab host boots whatever the system
        # profile points at (the deployer set it), so there is nothing to install.
        print("lab host: the next boot starts the system profile's generation")
        common.log_activation(action, closure, "ok")
        return 0
    at_boot = os.environ.get("HYDRA_LAB_BOOT") == "1"
    fault = settings.get("fault")
    print("activating the configuration...", file=sys.stderr, flush=True)
    stop, restart, start, ssh_changed = plan(closure)
    point_current_system(closure)
    exit_code = 0
    if fault == "activation":
        # Half-way: a snippet of the activation script failed after it had stopped k3s.
        # Upstream goes on with the switch (reload, restarts, starts) and exits 2
        # (ACTIVATION_FAILED); k3s stays stopped, being neither changed nor new.
        # The snippet's line is the activation script's own, on its stdout (upstream:
        # nixpkgs nixos/modules/system/activation/activation-script.nix, stored copy
        # @04da25cd20da: printf "Activation script snippet '%s' failed (%s)\n").
        systemctl("stop", "k3s.service")
        print("Activation script snippet 'hydra-lab-fault' failed (1)", flush=True)
        print("Failed to run activate script", file=sys.stderr)
        exit_code = ACTIVATION_FAILED
    if ssh_changed:
        install_sshd_config(closure)
        restart.append("ssh.service")
    install_units(closure)
    # switch-to-configuration-ng (main.rs, commit 00401fd7e581): "Forget about previously
    # failed services" (reset_failed), then make systemd reload its units.
    systemctl("reset-failed")
    systemctl("daemon-reload")
    print("setting up network interfaces...", flush=True)
    common.set_link(settings["interface"], up=True)
    k3s_deploy.link_manifests(closure)  # systemd-tmpfiles --create for the k3s manifests
    failed = []
    for verb, names in (("stop", stop), ("restart", restart), ("start", start)):
        if not names:
            continue
        # main.rs: "stopping|restarting|starting the following units: A, B" on stderr,
        # sorted case-insensitively.
        print(
            f"{GERUND[verb]} the following units: {', '.join(sorted(names, key=str.lower))}",
            file=sys.stderr,
            flush=True,
        )
        for name in names:
            # At boot the activation runs inside the boot transaction: queue, don't wait.
            proc = systemctl(verb, *(["--no-block"] if at_boot else []), name)
            if proc.returncode != 0 and verb != "stop":
                failed.append(name)
    if fault == "network":
        # The classic lock-out: a bad interface/firewall change takes the host offline.
        common.set_link(settings["interface"], up=False)
    if failed:
        print(f"warning: the following units failed: {', '.join(sorted(failed))}", file=sys.stderr)
        exit_code = UNITS_FAILED
    result = "ok" if exit_code == 0 else "failed"
    common.log_activation("boot-activation" if at_boot else action, closure, result)
    return exit_code
