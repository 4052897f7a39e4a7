"""The anchor process of a lab host (run as a script, standard library only).

Started by the lab inside the host's network namespace and a fresh private mount and
UTS namespace (`nsenter --net=… unshare --mount --uts --propagation private`). It gives
the host its own /nix (a tmpfs), /run, /etc (overlay, with its own /etc/ssh), /var (overlay),
/root and /tmp, hides systemd-run, sets the host name, prints "ready" and then just lives: every process
of the host enters its namespaces through this process (`nsenter -t PID`).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, timeout=30, capture_output=True)


def main(host_dir: Path, hostname: str, store_mb: int) -> int:
    try:
        mount(
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir=/etc,upperdir={host_dir}/etc,workdir={host_dir}/.work/etc",
            "/etc",
        )
        mount("--bind", str(host_dir / "ssh"), "/etc/ssh")
        mount(
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir=/var,upperdir={host_dir}/var,workdir={host_dir}/.work/var",
            "/var",
        )
        # /usr/bin without systemd-run (whiteouts the lab wrote): like the lab contract says,
        # there is no systemd here, and a deployer must take its fallback path.
        mount(
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir=/usr/bin,upperdir={host_dir}/usr-bin,workdir={host_dir}/.work/usr-bin",
            "/usr/bin",
        )
        # A sysfs of the host's own network namespace (as `ip netns exec` does), so
        # /sys/class/net shows eth0 of this host, not the runner's interfaces.
        mount("-t", "sysfs", "sysfs", "/sys")
        # The host's Nix store lives on its own size-limited tmpfs, so a full disk can be
        # injected (Lab.fill_disk) and it vanishes with the namespace.
        mount("-t", "tmpfs", "-o", f"size={store_mb}m,mode=0755", "hydra-lab-nix", "/nix")
        # Read-only /nix/store as on NixOS; Nix remounts it writable in a private mount
        # namespace of its own when it adds paths.
        Path("/nix/store").mkdir(mode=0o1775)
        mount("--bind", "/nix/store", "/nix/store")
        mount("-o", "remount,bind,ro", "/nix/store")
        for sub in ("run", "root", "tmp"):
            mount("--bind", str(host_dir / sub), f"/{sub}")
        socket.sethostname(hostname)
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace").strip()
        print(f"error: {' '.join(exc.cmd)}: {err}", flush=True)
        return 1
    except OSError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    sys.stdout.close()
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
