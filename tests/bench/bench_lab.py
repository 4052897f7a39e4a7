"""Benchmark of the lab: prints figures, asserts nothing. Needs root.

    .venv/bin/python tests/bench/bench_lab.py [--sizes 1,4,8] [--repeat 3]

Per lab size: `up` (until every sshd answers and every node is Ready), the memory of a
host (the proportional set size, PSS, of every process in its network namespace after
`up`, averaged over the hosts; its /nix tmpfs is not counted), a closure build, its
`nix copy` to one host over SSH, its activation over SSH, and `down`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydradeploy.lab import HostSpec, Lab
from hydradeploy.lab.requirements import missing


def specs(n: int) -> list[HostSpec]:
    out = [HostSpec("srv", "server", gpus={"nvidia": 2})]
    out += [HostSpec(f"w{i}", "agent", gpus={"nvidia": 1} if i % 2 else {"amd": 1})
            for i in range(1, n)]  # fmt: skip
    return out


def ssh_opts(lab: Lab) -> list[str]:
    return ["-i", str(lab.key_path), "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={lab.known_hosts_path}", "-o", "BatchMode=yes"]  # fmt: skip


def pss_mib_per_host(lab: Lab) -> float:
    from hydradeploy.lab import network

    total_kib = 0
    for host in lab.hosts.values():
        for pid in network.netns_pids(host.netns):
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    total_kib += sum(
                        int(ln.split()[1]) for ln in f if ln.startswith("Pss:")
                    )
            except OSError:
                continue
    return total_kib / 1024 / len(lab.hosts)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def one_round(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        lab = Lab(Path(tmp) / "lab")
        figures = {"up": timed(lambda: lab.up(specs(n)))}
        try:
            figures["MiB/host"] = pss_mib_per_host(lab)
            host = list(lab.hosts)[-1]
            addr = lab.address(host)
            path = ""

            def build() -> None:
                nonlocal path
                path = lab.closure(host)

            figures["closure"] = timed(build)
            env = {**os.environ, "NIX_SSHOPTS": " ".join(ssh_opts(lab))}
            figures["nix copy"] = timed(lambda: subprocess.run(
                ["nix", "--extra-experimental-features", "nix-command", "copy", "--to",
                 f"ssh://root@{addr}", path], env=env, check=True, capture_output=True,
                timeout=120))  # fmt: skip
            figures["ssh true"] = timed(
                lambda: subprocess.run(
                    ["ssh", *ssh_opts(lab), f"root@{addr}", "true"],
                    check=True,
                    timeout=30,
                )
            )
            figures["switch"] = timed(lambda: subprocess.run(
                ["ssh", *ssh_opts(lab), f"root@{addr}", f"{path}/bin/switch-to-configuration switch"],
                check=True, capture_output=True, timeout=60))  # fmt: skip
        finally:
            figures["down"] = timed(lab.down)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="3,8")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reason = missing()
    if reason:
        print(f"bench_lab: {reason}", file=sys.stderr)
        return 2
    columns = ["up", "MiB/host", "closure", "nix copy", "ssh true", "switch", "down"]
    print(
        f"{'hosts':>5}  " + "  ".join(f"{c:>9}" for c in columns) + "   (median of "
        f"{args.repeat}, seconds; {os.cpu_count()} cores)"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        rounds = [one_round(n) for _ in range(args.repeat)]
        row = [statistics.median(r[c] for r in rounds) for c in columns]
        print(f"{n:>5}  " + "  ".join(f"{v:>9.3f}" for v in row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
