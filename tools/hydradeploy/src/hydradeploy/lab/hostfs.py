"""What a lab host has of its own before it first boots: the files the lab writes into
the upper layer of its root overlay (the base image below is shared and read-only)."""

from __future__ import annotations

import os
from pathlib import Path

from hydradeploy.lab import sshd

# At boot, activate the generation the system profile points at — what a NixOS boot
# does with the generation its boot loader chose (stage 2 runs its activation script,
# then systemd starts the units of that generation). `switch-to-configuration boot`
# changes nothing else, so the next boot starts what the deployer put in the profile.
# upstream: nixpkgs nixos/modules/system/boot/stage-2-init.sh (stored copy @03b888e205e0,
# older than the pin): "$systemConfig/activate", then `ln -sfn "$systemConfig"
# /run/booted-system`, then `exec systemd`. The lab activates from a unit instead
# (systemd is already PID 1 in the container) with `switch-to-configuration test`,
# which also starts the generation's units.
ACTIVATE_UNIT = """[Unit]
Description=Activate the system profile's generation (hydra lab boot)
ConditionPathExists=/nix/var/nix/profiles/system
DefaultDependencies=no
After=local-fs.target
Before=multi-user.target ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
Environment=HYDRA_LAB_BOOT=1
ExecStart=/bin/sh -c 'p=$(readlink -f /nix/var/nix/profiles/system) && ln -sfn "$p" /run/booted-system && exec "$p/bin/switch-to-configuration" test'

[Install]
WantedBy=multi-user.target
"""

# Units of the Debian base a lab host does without: consoles nobody attaches to, and
# apt/dpkg timers that would reach for the network or fail (a failed unit would make
# `is-system-running` say degraded for a reason that is not the deploy's).
MASKED = (
    "console-getty.service", "container-getty@.service", "getty@.service",
    "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
    "e2scrub_all.timer", "fstrim.timer", "systemd-logind.service",
)  # fmt: skip


def prepare(host_dir: Path, name: str, token: str, client_pub: str) -> str:
    """Lay out HOST_DIR (upper/, .work/, root/, nix/) and write the host's own files;
    returns its public SSH host key."""
    for sub in ("upper/etc/profile.d", "upper/etc/systemd/system/multi-user.target.wants",
                "upper/var/lib/hydra-lab", ".work", "root", "nix"):  # fmt: skip
        (host_dir / sub).mkdir(parents=True, exist_ok=True)
    etc = host_dir / "upper" / "etc"
    host_key = sshd.write_host_ssh(etc / "ssh", name, client_pub)
    (etc / "hydra-lab").write_text(f"{name}\n")
    (etc / "hostname").write_text(f"{name}\n")
    # The lab's hosts take NixOS system closures (switch-to-configuration, profiles,
    # /run/current-system); /etc/NIXOS is how a host says so (switch-to-configuration-ng
    # main.rs @00401fd7e581: "This is not a NixOS installation!" without it).
    (etc / "NIXOS").write_text("")
    (etc / "profile.d" / "hydra-lab.sh").write_text(f'PATH="{sshd.SESSION_PATH}"\nexport PATH\n')
    units = etc / "systemd" / "system"
    (units / "hydra-lab-activate.service").write_text(ACTIVATE_UNIT)
    _symlink(
        "../hydra-lab-activate.service",
        units / "multi-user.target.wants" / "hydra-lab-activate.service",
    )
    for unit in MASKED:
        _symlink("/dev/null", units / unit)
    tok = host_dir / "upper" / "var" / "lib" / "hydra-lab" / "k3s-token"
    tok.write_text(token + "\n")
    tok.chmod(0o600)
    return host_key


def _symlink(target: str, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link)
