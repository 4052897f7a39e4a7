#!/usr/bin/env python3
"""Benchmark of the closure copy (needs root: a lab). Prints figures; asserts nothing.

    .venv/bin/python tests/bench/bench_copy.py [--mib 200] [--rounds 3] \\
        [--tool-src /work/wt/old/tools/hydradeploy/src] [--tool-src tools/hydradeploy/src]

A lab (a server and one agent) and one closure for the agent with --mib MiB of
incompressible payload in many store paths (`lab closure --payload-mib`). Each round,
alternating, the agent's store is emptied of that closure and it is copied again by:

  * `nix copy --to ssh://root@ADDR` over OpenSSH (NIX_SSHOPTS: the lab key, strict
    host-key checking against the lab's known_hosts) — the reference;
  * each --tool-src's `closure.copy_closure(connection, path)`: the deploy's copy step
    exactly (ask the host which paths it lacks, check space, send), over an SSH
    connection opened beforehand as a deploy has it. Default: this tree.

Median of --rounds per contender, MB/s (payload bytes / seconds), and the ratio of each
tool to `nix copy`.

Then, per --tool-src, one whole `hydradeploy deploy` of a small new closure, counting SSH
connections to the agent in two ways: the tool's own count (`ssh_connections` in
--output json: paramiko connections, plus the OpenSSH one `nix copy` opens where the
tool uses it), and the host's sshd: "Accepted publickey" lines in its journal
(`journalctl -u ssh`) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydradeploy.lab import HostSpec, Lab

HERE = Path(__file__).resolve().parents[2] / "tools" / "hydradeploy" / "src"

TOOL_COPY = r"""
import json, sys, time
from pathlib import Path
from hydradeploy.inventory import load_inventory
from hydradeploy.deploy import closure
try:
    from hydradeploy.transport import connect
except ImportError:  # trees from before transport/ (12a3e3e): deploy.remote.Remote
    from hydradeploy.deploy.remote import Remote as connect
inv = load_inventory(Path(sys.argv[1]))
host = inv.host(sys.argv[2])
with connect(host) as conn:
    t = time.monotonic()
    stats = closure.copy_closure(conn, sys.argv[3])
    print(json.dumps({"seconds": time.monotonic() - t, "sent": stats.sent}))
"""


def run(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 600
) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                         check=False)  # fmt: skip
    if res.returncode != 0:
        sys.exit(f"{argv[0]} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return res.stdout


def empty_host(lab: Lab, host: str, paths: list[str]) -> None:
    """Delete the closure's paths on the host (no root refers to them there)."""
    lab.run(host, ["nix-store", "--delete", *paths], timeout=120)
    left = lab.run(
        host, ["nix-store", "--check-validity", "--print-invalid", *paths]
    ).stdout
    if len(left.split()) != len(paths):
        sys.exit(f"bench_copy: could not empty {host}'s store of the closure")


def nix_copy(lab: Lab, host: str, path: str) -> float:
    opts = (f"-i {lab.key_path} -o IdentitiesOnly=yes -o UserKnownHostsFile={lab.known_hosts_path}"
            " -o StrictHostKeyChecking=yes -o BatchMode=yes")  # fmt: skip
    env = {**os.environ, "NIX_SSHOPTS": opts}
    t = time.monotonic()
    run(["nix", "--extra-experimental-features", "nix-command", "copy", "--to",
         f"ssh://root@{lab.address(host)}", path], env)  # fmt: skip
    return time.monotonic() - t


def tool_copy(lab: Lab, host: str, path: str, src: str) -> float:
    env = {**os.environ, "PYTHONPATH": src}
    out = run(
        [sys.executable, "-c", TOOL_COPY, str(lab.inventory_path), host, path], env
    )
    return float(json.loads(out)["seconds"])


def accepted(lab: Lab, host: str) -> int | None:
    """ "Accepted publickey" lines in the host's sshd journal (None: no journal)."""
    res = lab.run(
        host, ["journalctl", "-u", "ssh", "--no-pager", "-o", "cat"], timeout=30
    )
    if res.returncode != 0:
        return None
    return sum("Accepted publickey" in ln for ln in res.stdout.splitlines())


def deploy_connections(
    lab: Lab, host: str, src: str, state: Path
) -> tuple[int, int | None, str]:
    top = lab.closure(host)
    args = ["--confirm-timeout", "5", "--check-timeout", "30"]
    if (
        "stability-window"
        in (Path(src) / "hydradeploy" / "deploy" / "cli.py").read_text()
    ):
        args += ["--stability-window", "1"]
    env = {**os.environ, "PYTHONPATH": src, "XDG_STATE_HOME": str(state)}
    before = accepted(lab, host)
    res = subprocess.run(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path),
         "deploy", host, f"--closure={host}={top}", *args, "--output", "json"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    time.sleep(1)  # the journal catches up
    after = accepted(lab, host)
    try:  # an older tree may fail against today's lab; its count still says something
        rep = json.loads(res.stdout)["hosts"][0]
    except (ValueError, LookupError):
        sys.exit(
            f"bench_copy: deploy with {src} printed no report:\n{res.stderr[-2000:]}"
        )
    seen = after - before if before is not None and after is not None else None
    return rep["ssh_connections"], seen, str(rep["outcome"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tool-src", action="append", default=[],
                    help="PYTHONPATH of a hydradeploy to measure (repeatable).")  # fmt: skip
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_copy: needs root (the lab uses network namespaces)")
    srcs = [str(Path(s).resolve()) for s in a.tool_src] or [str(HERE)]
    with tempfile.TemporaryDirectory(prefix="hydra-bench-copy-") as d:
        lab = Lab(Path(d) / "lab", store_mb=max(1024, 3 * a.mib))
        try:
            lab.up([HostSpec("srv", "server"), HostSpec("w1", "agent")])
            top = lab.closure("w1", payload_mib=a.mib, payload_seed="bench-copy")
            paths = run(["nix-store", "--query", "--requisites", top]).split()
            nar = sum(
                int(x) for x in run(["nix-store", "--query", "--size", *paths]).split()
            )
            on_host = set(lab.run("w1", ["nix-store", "--check-validity", "--print-invalid",
                                         *paths]).stdout.split())  # fmt: skip
            fresh = [p for p in paths if p in on_host]  # only what the bench put there
            times: dict[str, list[float]] = {}
            for _ in range(a.rounds):
                empty_host(lab, "w1", fresh)
                times.setdefault("nix copy (OpenSSH)", []).append(
                    nix_copy(lab, "w1", top)
                )
                for src in srcs:
                    empty_host(lab, "w1", fresh)
                    times.setdefault(f"hydradeploy {src}", []).append(
                        tool_copy(lab, "w1", top, src))  # fmt: skip
            empty_host(lab, "w1", fresh)
            conns = {
                src: deploy_connections(lab, "w1", src, Path(d) / "state")
                for src in srcs
            }
        finally:
            lab.down()
    ref = statistics.median(times["nix copy (OpenSSH)"])
    print(f"copy of a closure of {len(fresh)} paths, {nar / 2**20:.0f} MiB (NAR), "
          f"median of {a.rounds}, alternating:")  # fmt: skip
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name}: {med:.2f} s ({nar / med / 1e6:.0f} MB/s), ratio {med / ref:.2f} "
              f"[{', '.join(f'{v:.2f}' for v in values)}]")  # fmt: skip
    print(
        "SSH connections to the agent per deploy (tool's count / host sshd's accepted):"
    )
    for src, (counted, seen, outcome) in conns.items():
        print(
            f"  {src}: {counted} / {'?' if seen is None else seen} (deploy {outcome})"
        )


if __name__ == "__main__":
    main()
