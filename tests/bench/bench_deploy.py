#!/usr/bin/env python3
"""Benchmark of `hydradeploy deploy` against lab hosts (needs root). Prints figures; asserts
nothing about time.

    .venv/bin/python tests/bench/bench_deploy.py [--agents 8]
    .venv/bin/python tests/bench/bench_deploy.py --scale [--rounds 3] [--stability-window 10]
        [--tool-src /work/main/tools/hydradeploy/src --tool-src tools/hydradeploy/src]

Figures:
  * the tool's own overhead per host: every step except copy, activation and waiting
    for the node (connect, preflight, lock, profile, arm, confirm, record), from the
    per-step times the deploy reports with --output json;
  * wall time of one agent alone vs N agents with --max-parallel N;
  * SSH connections opened per host per deploy (counted by the tool; cross-checked with
    the "Accepted publickey" lines of each host's sshd log when it has one);
  * a plain shell loop doing the same copy + activate with `nix copy` and `ssh`, and the
    ratio of the tool's time to it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydradeploy.lab import HostSpec, Lab

# not the tool's own overhead: the copy, the activation, the checks, and waiting for an
# activation slot (hosts prepared ahead of their turn)
EXCLUDED = {"copy", "activate", "checks", "copy-stats", "wait"}


def deploy(
    inv: Path,
    hosts: list[str],
    closures: dict[str, str],
    parallel: int,
    env: dict[str, str],
    extra: tuple[str, ...] = (),
) -> tuple[float, dict]:
    args = [f"--closure={h}={closures[h]}" for h in hosts]
    t = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(inv), "deploy", *hosts, *args,
         "--max-parallel", str(parallel), "--confirm-timeout", "10", "--check-timeout", "120",
         *extra, "--output", "json"],
        capture_output=True, text=True, env=env, check=False, timeout=900,
    )  # fmt: skip
    wall = time.monotonic() - t
    if res.returncode != 0:
        sys.exit(f"deploy failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return wall, json.loads(res.stdout)


VERDICT_STEPS = {"activate", "confirm", "node-sync", "checks"}


def activate_to_deployed(report: dict) -> float:
    """Seconds from the start of the activation to the verdict (activation, confirm,
    node sync, checks: the steps the report times)."""
    return sum(s["seconds"] for s in report["steps"] if s["step"] in VERDICT_STEPS)


def verdict_bench(a: argparse.Namespace) -> None:
    """Activate → deployed, median of --rounds: one agent and --agents agents at
    --max-parallel N, with k3s restarted (a new closure) and not (the running closure
    again: the lab restarts k3s only for another closure). --tool-src runs the deploy
    from another source tree (e.g. main's, for a before/after)."""
    agents = [f"w{i}" for i in range(1, a.agents + 1)]
    tool_src = a.tool_src[-1] if a.tool_src else ""
    env_extra = {"PYTHONPATH": tool_src} if tool_src else {}
    with tempfile.TemporaryDirectory(prefix="hydra-bench-") as d:
        lab = Lab(Path(d) / "lab", grace_seconds=a.grace, heartbeat_seconds=a.heartbeat)
        env = {**os.environ, "XDG_STATE_HOME": str(Path(d) / "state"), **env_extra}
        figures: dict[str, list[float]] = {}
        try:
            inv = lab.up([HostSpec("srv", "server"),
                          *(HostSpec(w, "agent", gpus={"nvidia": 1}) for w in agents)])  # fmt: skip
            for _ in range(a.rounds):
                for group in (agents[:1], agents):
                    label = f"{len(group)} agent(s)"
                    fresh = {w: lab.closure(w) for w in group}
                    _wall, data = deploy(inv, group, fresh, len(group), env)
                    figures.setdefault(f"{label}, k3s restarted", []).extend(
                        activate_to_deployed(r) for r in data["hosts"])  # fmt: skip
                    _wall, data = deploy(inv, group, fresh, len(group), env)
                    figures.setdefault(f"{label}, k3s not restarted", []).extend(
                        activate_to_deployed(r) for r in data["hosts"])  # fmt: skip
        finally:
            lab.down()
    print(f"activate -> deployed (lease renewal {a.heartbeat:g} s, grace {a.grace:g} s, "
          f"{a.rounds} rounds, tool from {tool_src or 'this tree'}):")  # fmt: skip
    for name, values in figures.items():
        print(
            f"  {name}: median {statistics.median(values):.1f} s, max {max(values):.1f} s"
        )


def scale_bench(a: argparse.Namespace) -> None:
    """One agent vs 8 vs 16 agents at --max-parallel 8 (issue 15's scale figure): wall
    time of the whole command, its ratio to one agent, and where each host's time goes
    (median per step over the hosts and rounds), so that the window of activated hosts,
    the stability window and per-host round trips can be told apart. With several
    --tool-src the trees take turns within each round, on the same lab (a fair
    before/after on a machine whose other load changes)."""
    sizes = [1, 8, 16]
    agents = [f"w{i}" for i in range(1, max(sizes) + 1)]
    extra = ("--stability-window", f"{a.stability_window:g}")
    trees = a.tool_src or [""]
    with tempfile.TemporaryDirectory(prefix="hydra-bench-") as d:
        lab = Lab(Path(d) / "lab")
        base_env = {**os.environ, "XDG_STATE_HOME": str(Path(d) / "state")}
        walls: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}  # the deployer's, children too
        spans: dict[tuple[str, int], list[float]] = {}
        steps: dict[tuple[str, int], dict[str, list[float]]] = {}
        try:
            t = time.monotonic()
            inv = lab.up([HostSpec("srv", "server"),
                          *(HostSpec(w, "agent", gpus={"nvidia": 1}) for w in agents)])  # fmt: skip
            print(f"lab up: {1 + len(agents)} hosts in {time.monotonic() - t:.1f} s")
            for r in range(a.rounds):
                for n in sizes:
                    for tree in trees:
                        env = {**base_env, "PYTHONPATH": tree} if tree else base_env
                        key = (tree, n)
                        group = agents[:n]
                        closures = {w: lab.closure(w) for w in group}
                        before = resource.getrusage(resource.RUSAGE_CHILDREN)
                        wall, data = deploy(inv, group, closures, 8, env, extra)
                        after = resource.getrusage(resource.RUSAGE_CHILDREN)
                        cpu.setdefault(key, []).append(
                            after.ru_utime
                            - before.ru_utime
                            + after.ru_stime
                            - before.ru_stime
                        )
                        walls.setdefault(key, []).append(wall)
                        spans.setdefault(key, []).append(
                            max(h["seconds"] for h in data["hosts"])
                        )
                        for rep in data["hosts"]:
                            for st in rep["steps"]:
                                steps.setdefault(key, {}).setdefault(
                                    st["step"], []
                                ).append(st["seconds"])
                        print(f"  round {r + 1}: {n:2d} agent(s): {wall:.2f} s"
                              f"{'  (' + tree + ')' if tree else ''}", flush=True)  # fmt: skip
        finally:
            lab.down()
    med = statistics.median
    for tree in trees:
        base = med(walls[(tree, 1)])
        print(f"deploy at --max-parallel 8, stability window {a.stability_window:g} s, "
              f"median of {a.rounds} rounds (process wall time), tool from "
              f"{tree or 'this tree'}:")  # fmt: skip
        for n in sizes:
            k = (tree, n)
            print(f"  {n:2d} agent(s): {med(walls[k]):.2f} s = {med(walls[k]) / base:.2f}x one "
                  f"agent (slowest host {med(spans[k]):.2f} s; deployer CPU {med(cpu[k]):.2f} s)")  # fmt: skip
        for n in sizes:
            print(f"  per step, {n} agent(s), median: "
                  + ", ".join(f"{s} {med(v):.2f}" for s, v in steps[(tree, n)].items()))  # fmt: skip


# --model: the engine's own schedule on stand-ins (no lab, no CPU contention): each run
# in a child process so that --tool-src picks the tree; the harness is the one of
# tests/deploy/test_schedule.py (recording stand-in transport, timed copy and checks).
MODEL_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from _pytest.monkeypatch import MonkeyPatch
sys.path[:0] = ["tests", "tests/deploy"]
from test_schedule import Fleet
n, copy_s, slot_s, spread = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
checks = {f"w{i}": slot_s * (1 - spread + 2 * spread * ((i * 7) % 11) / 10) for i in range(1, n + 1)}
with tempfile.TemporaryDirectory() as d:
    mp = MonkeyPatch()
    fleet = Fleet(Path(d), mp, n, checks, copy_s=copy_s)
    t = time.monotonic()
    reps = fleet.deploy([f"w{i}" for i in range(1, n + 1)], max_parallel=8)
    wall = time.monotonic() - t
    mp.undo()
print(json.dumps({"wall": wall, "ok": all(r.ok for r in reps.values())}))
"""


def model_bench(a: argparse.Namespace) -> None:
    """The schedule alone: 1, 8, 16 agents at --max-parallel 8 on the stand-in transport,
    each copy --model-copy seconds, each host's activation-to-verified time
    --model-slot seconds ± --model-spread (a fixed pattern per host), for each
    --tool-src. Sleeps stand for the work, so the hosts do not share a CPU as the lab's
    do: this is what the order of steps costs, not a measurement of hosts."""
    trees = a.tool_src or [""]
    print(f"model: copy {a.model_copy:g} s, activated-to-verified {a.model_slot:g} s "
          f"± {a.model_spread:.0%}, --max-parallel 8 (wall time of Engine.run)")  # fmt: skip
    for tree in trees:
        env = {**os.environ, "PYTHONPATH": tree} if tree else dict(os.environ)
        walls = {}
        for n in (1, 8, 16):
            res = subprocess.run(
                [sys.executable, "-c", MODEL_CHILD, str(n), str(a.model_copy),
                 str(a.model_slot), str(a.model_spread)],
                capture_output=True, text=True, env=env, check=False, timeout=600,
            )  # fmt: skip
            if res.returncode != 0:
                sys.exit(f"model run failed:\n{res.stderr[-3000:]}")
            out = json.loads(res.stdout.strip().splitlines()[-1])
            walls[n] = out["wall"]
        print(f"  {tree or 'this tree'}: " + ", ".join(
            f"{n} agent(s) {w:.2f} s = {w / walls[1]:.2f}x" for n, w in walls.items()))  # fmt: skip


def overhead(report: dict) -> float:
    return sum(s["seconds"] for s in report["steps"] if s["step"] not in EXCLUDED) + (
        report["seconds"]
        - sum(s["seconds"] for s in report["steps"] if s["step"] != "copy-stats")
    )


def shell_loop(lab: Lab, inv_hosts: list[str], closures: dict[str, str]) -> float:
    """The same copy/activate steps, one host after the other, with nix copy and ssh."""
    key, known = str(lab.key_path), str(lab.known_hosts_path)
    sshopts = f"-i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o BatchMode=yes"
    env = {**os.environ, "NIX_SSHOPTS": sshopts}
    t = time.monotonic()
    for h in inv_hosts:
        addr, path = lab.address(h), closures[h]
        subprocess.run(["nix", "--extra-experimental-features", "nix-command", "copy", "--to", f"ssh://root@{addr}", path],
                       env=env, check=True, capture_output=True, timeout=300)  # fmt: skip
        remote = f"nix-env -p /nix/var/nix/profiles/system --set {shlex.quote(path)} && {shlex.quote(path)}/bin/switch-to-configuration switch"
        subprocess.run(
            ["ssh", *shlex.split(sshopts), f"root@{addr}", remote],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return time.monotonic() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--verdict", action="store_true",
                    help="Only measure activate -> deployed, k3s restarted and not.")  # fmt: skip
    ap.add_argument("--heartbeat", type=float, default=1.0,
                    help="Lab Lease renewal interval (upstream: 10).")  # fmt: skip
    ap.add_argument("--grace", type=float, default=4.0,
                    help="Lab node-monitor grace period (upstream: 40-50).")  # fmt: skip
    ap.add_argument(
        "--tool-src", action="append", default=[],
        help="PYTHONPATH of the hydradeploy to run (--scale: repeat it to compare trees, "
        "which take turns within each round).",
    )  # fmt: skip
    ap.add_argument("--scale", action="store_true",
                    help="Only one agent vs 8 vs 16 agents at --max-parallel 8.")  # fmt: skip
    ap.add_argument("--stability-window", type=float, default=10.0,
                    help="--scale: the deploy's stability window (its default: 10).")  # fmt: skip
    ap.add_argument("--model", action="store_true",
                    help="Only the schedule on stand-ins (no lab, no root): 1/8/16 agents.")  # fmt: skip
    ap.add_argument(
        "--model-copy", type=float, default=0.5, help="--model: seconds per copy."
    )
    ap.add_argument("--model-slot", type=float, default=3.0,
                    help="--model: seconds from activation to verified.")  # fmt: skip
    ap.add_argument("--model-spread", type=float, default=0.3,
                    help="--model: +/- this fraction between hosts.")  # fmt: skip
    a = ap.parse_args()
    if a.model:
        model_bench(a)
        return
    if os.geteuid() != 0:
        sys.exit("bench_deploy: needs root (the lab uses network namespaces)")
    if a.verdict:
        verdict_bench(a)
        return
    if a.scale:
        scale_bench(a)
        return
    agents = [f"w{i}" for i in range(1, a.agents + 1)]
    with tempfile.TemporaryDirectory(prefix="hydra-bench-") as d:
        lab = Lab(Path(d) / "lab")
        env = {**os.environ, "XDG_STATE_HOME": str(Path(d) / "state")}
        try:
            t = time.monotonic()
            inv = lab.up(
                [
                    HostSpec("srv", "server"),
                    *(HostSpec(w, "agent", gpus={"nvidia": 1}) for w in agents),
                ]
            )
            print(f"lab up: {1 + len(agents)} hosts in {time.monotonic() - t:.2f} s")
            one, many, overheads, conns, alone = [], [], [], [], []
            for _ in range(a.rounds):
                closures = {w: lab.closure(w) for w in agents}
                wall, data = deploy(inv, agents[:1], closures, 1, env)
                one.append(wall)
                alone.append(overhead(data["hosts"][0]))
                closures = {w: lab.closure(w) for w in agents}
                wall, data = deploy(inv, agents, closures, len(agents), env)
                many.append(wall)
                for rep in data["hosts"]:
                    overheads.append(overhead(rep))
                    conns.append(rep["ssh_connections"])
            closures = {w: lab.closure(w) for w in agents}
            loop = shell_loop(lab, agents, closures)
            closures = {w: lab.closure(w) for w in agents}
            wall_tool, data = deploy(inv, agents, closures, len(agents), env)
            steps: dict[str, list[float]] = {}
            for rep in data["hosts"]:
                for s in rep["steps"]:
                    steps.setdefault(s["step"], []).append(s["seconds"])
        finally:
            lab.down()
    med = statistics.median
    print(
        f"tool overhead per host (all but copy/activate/checks), one agent alone: median {med(alone):.3f} s"
    )
    print(
        f"tool overhead per host, {len(agents)} agents at once: median {med(overheads):.3f} s, max {max(overheads):.3f} s"
    )
    print(
        "per step, median over the last deploy's hosts: "
        + ", ".join(f"{k} {med(v):.3f}s" for k, v in steps.items())
    )
    print(
        f"one agent alone: median {med(one):.2f} s (process wall time, {a.rounds} rounds)"
    )
    print(
        f"{len(agents)} agents, --max-parallel {len(agents)}: median {med(many):.2f} s -> {med(many) / med(one):.2f}x one agent"
    )
    print(
        f"SSH connections per host per deploy: {sorted(set(conns))} (counted by the tool)"
    )
    print(
        f"plain shell loop (nix copy + ssh, sequential, no checks): {loop:.2f} s for {len(agents)} agents"
    )
    print(
        f"hydradeploy, same hosts, with confirm and join checks: {wall_tool:.2f} s -> ratio {wall_tool / loop:.2f}"
    )


if __name__ == "__main__":
    main()
