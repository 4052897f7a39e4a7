"""The base root file system every lab host boots: Debian made once with debootstrap,
cached outside the repository, keyed by suite and package list. Hosts never get a copy:
each boots an overlay whose lower layer is this tree (see keeper.py)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hydradeploy.errors import OperationFailed, UserError

SUITE = "bookworm"
MIRROR = os.environ.get("HYDRA_LAB_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("HYDRA_LAB_CACHE", "/var/cache/hydra-lab"))
# systemd as PID 1 (with dbus for systemctl's bus), a real ssh.service, Nix for the
# store and profiles, iproute2 for the lab's link faults, python3 (3.11 in bookworm)
# for the simulated parts a closure carries, procps for ps/kill in the guard.
# libdbi-perl: nix-bin needs libdbd-sqlite3-perl, which depends on the virtual package
# perl-dbdabi-94 that libdbi-perl provides; debootstrap does not resolve virtual packages
# (its dpkg run fails with "Package perl-dbdabi-94 is not installed" without it).
# python3-yaml: the simulated k3s deploy controller parses manifests with PyYAML.
# age: what agenix decrypts with on a host (`hydradeploy secrets check --on-hosts`
# runs `age -d` there with the host's SSH key).
PACKAGES = ("systemd", "dbus", "openssh-server", "nix-bin", "libdbi-perl", "iproute2",
            "python3", "python3-yaml", "procps", "age")  # fmt: skip
GUEST_PYTHON = "/usr/bin/python3"  # what closure scripts run with, inside the host
DEBOOTSTRAP_TIMEOUT = 1800


def key(packages: tuple[str, ...] = PACKAGES, suite: str = SUITE) -> str:
    return hashlib.sha256(f"{suite}\n{' '.join(sorted(packages))}".encode()).hexdigest()[:16]


def root_path(packages: tuple[str, ...] = PACKAGES) -> Path:
    return CACHE / f"base-{SUITE}-{key(packages)}" / "root"


def ensure(progress: Callable[[str], None] | None = None) -> Path:
    """The cached base root, built first when absent (one builder at a time, others
    wait). Returns its path. A half-built tree is never used: it is built beside the
    final path and renamed into place."""
    final = root_path()
    if (final / "etc" / "hydra-lab-base").exists():
        return final
    if shutil.which("debootstrap") is None:
        raise UserError(
            "lab: needs debootstrap to build its base image (apt-get install debootstrap)"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "etc" / "hydra-lab-base").exists():
            return final
        if progress:
            progress(f"building the lab's base image with debootstrap ({SUITE}), once")
        partial = final.parent / "root.partial"
        shutil.rmtree(partial, ignore_errors=True)
        started = time.monotonic()
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(partial), MIRROR],
            capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise OperationFailed(f"lab: debootstrap into {partial} failed: {tail[0]}")
        _trim(partial)
        (partial / "etc" / "hydra-lab-base").write_text(
            f"suite={SUITE}\npackages={' '.join(PACKAGES)}\n"
            f"built_seconds={time.monotonic() - started:.0f}\n"
        )
        os.rename(partial, final)
    return final


def _trim(root: Path) -> None:
    """What a host must not share or does not need: Debian's generated host keys (each
    host gets its own /etc/ssh), the machine id (systemd makes one per boot when the
    file is empty), the package caches."""
    for key_file in (root / "etc" / "ssh").glob("ssh_host_*"):
        key_file.unlink()
    (root / "etc" / "machine-id").write_text("")
    shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    (root / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True)
    shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (root / "var" / "lib" / "apt" / "lists").mkdir()
