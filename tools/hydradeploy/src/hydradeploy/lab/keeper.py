"""The anchor process of a lab host (run as a script, standard library only).

Started by the lab inside the host's network namespace and a private mount namespace
(`nsenter --net=… unshare --mount --propagation private`). It mounts what must outlive
a reboot of the host — its /nix (a size-limited tmpfs: the host's "disk" for the store)
and its root (an overlay: the shared, read-only base image below, the host's own
changes above) — prints "ready", then boots the host with `systemd-nspawn --boot` and
boots it again whenever the machine reboots. Everything it mounted goes away with its
mount namespace when it dies.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

# systemd-nspawn exits 133 when the container rebooted (upstream: systemd src/nspawn/
# nspawn.c @000c4035603e, `#define EXIT_FORCE_RESTART 133`, CONTAINER_REBOOTED; the
# systemd-nspawn(1) page of 252 says only "The exit code of the program executed in the
# container is returned"); Debian 252's systemd-nspawn@.service restarts on it
# (RestartForceExitStatus=133); we do the same.
REBOOT_STATUS = 133


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, timeout=30, capture_output=True)


def nspawn_argv(host_dir: Path, hostname: str, netns: str) -> list[str]:
    return [
        "systemd-nspawn", "--boot", "--quiet", "--register=no", "--keep-unit",
        f"--directory={host_dir / 'root'}", f"--hostname={hostname}",
        f"--machine={netns}",  # unique on this machine: the lab's netns name
        f"--network-namespace-path=/run/netns/{netns}",
        # Its own network namespace, its own links: systemd-nspawn(1) of 252 keeps
        # CAP_NET_ADMIN only with --private-network, which --network-namespace-path=
        # "cannot be used together with" (same page), and a host must be
        # able to take its eth0 down and up as a NixOS host can.
        "--capability=CAP_NET_ADMIN",
        f"--bind={host_dir / 'nix'}:/nix",
        "--console=passive",
        "--link-journal=no", "--resolv-conf=off", "--timezone=off",
    ]  # fmt: skip


def main(host_dir: Path, hostname: str, store_mb: int, base: Path, netns: str) -> int:
    try:
        # The host's Nix store lives on its own size-limited tmpfs, so a full disk can be
        # injected (Lab.fill_disk); it survives reboots of the host, not `lab down`.
        mount("-t", "tmpfs", "-o", f"size={store_mb}m,mode=0755", "hydra-lab-nix",
              str(host_dir / "nix"))  # fmt: skip
        (host_dir / "nix" / "store").mkdir(mode=0o1775)
        # Read-only /nix/store as on NixOS (nixos/modules/system/boot/stage-2-init.sh:
        # `mount --bind /nix/store /nix/store; mount -o remount,ro,bind /nix/store`);
        # Nix remounts it writable in a private mount namespace of its own to add paths.
        # systemd-nspawn's --bind is recursive, so the host sees this mount.
        store = str(host_dir / "nix" / "store")
        mount("--bind", store, store)
        mount("-o", "remount,bind,ro", store)
        mount(
            "-t", "overlay", "overlay", "-o",
            f"lowerdir={base},upperdir={host_dir / 'upper'},workdir={host_dir / '.work'}",
            str(host_dir / "root"),
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace").strip()
        print(f"error: {' '.join(exc.cmd)}: {err}", flush=True)
        return 1
    except OSError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    child: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        for proc in child:
            proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    sys.stdout.close()
    boots = 0
    while True:
        boots += 1
        with open(host_dir / "console.log", "ab") as console:
            proc = subprocess.Popen(
                nspawn_argv(host_dir, hostname, netns),
                stdin=subprocess.DEVNULL, stdout=console, stderr=console,
            )  # fmt: skip
        child[:] = [proc]
        (host_dir / "nspawn.pid").write_text(f"{proc.pid} {boots}\n")
        rc = proc.wait()
        if rc != REBOOT_STATUS:
            (host_dir / "nspawn.pid").write_text(f"0 {boots} exited {rc}\n")
            return rc


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]))
