#!/usr/bin/env python3
"""Benchmark of `hydradeploy convert podman-to-k8s`: wall time and peak memory of the real
CLI (a fresh process per size) for N generated containers with realistic option mixes,
plus `hydradeploy --help` start-up time. Prints figures; asserts nothing.

    .venv/bin/python tests/bench/bench_convert.py [--base DIR] [--runs R] [N …]

With `--base DIR` (another checkout of this repository, e.g. a worktree at an older
commit), each size is also converted by that checkout's code — same interpreter and
libraries, its own src/ first on PYTHONPATH and its own k8s/ and inventory — in
alternating runs, and the medians are compared (wall and CPU time of the child).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def container(i: int, rng: random.Random) -> dict[str, Any]:
    """One container like the ones on real podman hosts: media apps, databases, GPU
    inference, each with ports, binds, env, sometimes secrets, devices and flags."""
    kind = rng.choice(["media", "db", "gpu", "web", "rocm"])
    c: dict[str, Any] = {
        "image": f"registry.example/{kind}/app-{i % 50}:1.{i % 7}",
        "environment": {
            "TZ": "Europe/Berlin",
            "PUID": "1000",
            "PGID": "1000",
            f"APP_{i}_MODE": "prod",
        },
        "ports": [f"{10000 + i % 20000}:80", f"127.0.0.1:{40000 + i % 20000}:9090"],
        "volumes": [f"/mnt/data/app{i}:/config", "/mnt/media:/media:ro"],
        "extraOptions": [
            "--memory=2g",
            "--cpus=1.5",
            "--health-cmd=curl -f http://localhost/ || exit 1",
            "--health-interval=30s",
        ],
    }
    if kind == "db":
        c["volumes"].append(f"db{i}:/var/lib/postgresql/data")
        c["environment"]["POSTGRES_PASSWORD"] = f"pw-{i}"
        c["environmentFiles"] = [f"/run/agenix/db{i}.env"]
    elif kind == "gpu":
        c["devices"] = ["nvidia.com/gpu=all"]
        c["extraOptions"] += ["--shm-size=8g"]
    elif kind == "rocm":
        c["devices"] = ["/dev/kfd", "/dev/dri"]
        c["environment"]["HSA_OVERRIDE_GFX_VERSION"] = "11.0.0"
    elif kind == "media":
        c["extraOptions"] += ["--network=host", "--device=/dev/dri"]
    else:
        c["ports"].append(f"{30000 + i % 2700}:8443")
        c["labels"] = {"traefik.enable": "true"}
    if i and rng.random() < 0.3:
        c["dependsOn"] = [f"app-{rng.randrange(i)}"]
    return c


def generate(n: int, path: Path) -> None:
    rng = random.Random(n)
    path.write_text(json.dumps({f"app-{i}": container(i, rng) for i in range(n)}))


def run_once(
    src: Path, out: Path, secrets: Path, root: Path
) -> tuple[float, float, float, float]:
    """One real CLI run in a fresh process: wall s, user CPU s, system CPU s, peak RSS MB
    (system time is mostly the file system creating the files).
    `root` is the checkout whose code, k8s/ tree and inventory the run uses."""
    argv = [sys.executable, "-m", "hydradeploy", "convert", "podman-to-k8s", "--json", str(src), "--host", "hydra-ai",
            "--out", str(out), "--secrets-dir", str(secrets), "-q"]  # fmt: skip
    # the child's times and peak RSS, measured by a tiny wrapper
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:]); w = time.perf_counter() - t; "
        "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(w, u.ru_utime, u.ru_stime, u.ru_maxrss, r.returncode)"
    )
    env = {**os.environ, "HYDRA_ROOT": str(root)}
    # as an installed tool runs: from cached bytecode (pip compiles at install), not
    # compiling every module on every start; the cache lives beside the outputs, so
    # neither checkout gets __pycache__ folders
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(out.parent / "pycache")
    if root != REPO:
        src_dir = root / "tools" / "hydradeploy" / "src"
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(src_dir), env.get("PYTHONPATH")])
        )
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(secrets, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    wall, user, system, rss_kb, rc = proc.stdout.split()
    if rc != "0":
        raise SystemExit(f"convert ({root}) failed: {proc.stderr}")
    return float(wall), float(user), float(system), int(rss_kb) / 1024


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def run_convert(
    n: int, work: Path, roots: list[Path], runs: int
) -> tuple[dict[Path, tuple[float, float, float, float]], int]:
    """Per checkout: median wall, user and system s, largest peak RSS MB over `runs` runs,
    the checkouts alternating run by run (the machine is shared: load drifts)."""
    src = work / f"containers-{n}.json"
    generate(n, src)
    samples: dict[Path, list[tuple[float, float, float, float]]] = {
        r: [] for r in roots
    }
    for i, root in enumerate(roots):  # warm-up: fills the bytecode cache, not timed
        run_once(src, work / f"out-{n}-{i}", work / f"secrets-{n}-{i}", root)
    for _ in range(runs):
        for i, root in enumerate(roots):
            out, secrets = work / f"out-{n}-{i}", work / f"secrets-{n}-{i}"
            samples[root].append(run_once(src, out, secrets, root))
    files = sum(1 for _ in (work / f"out-{n}-0" / "hydra-ai").iterdir())
    return {
        r: (
            median([s[0] for s in xs]),
            median([s[1] for s in xs]),
            median([s[2] for s in xs]),
            max(s[3] for s in xs),
        )
        for r, xs in samples.items()
    }, files


def phases(n: int, work: Path) -> dict[str, float]:
    """The same conversion in-process, timed per phase, to separate the tool's own work
    from the file system's."""
    from hydradeploy.convert import write
    from hydradeploy.convert.emit import EmitOptions, convert
    from hydradeploy.convert.oci_containers import load_json_file, load_podman

    src = work / f"containers-{n}.json"
    t0 = time.perf_counter()
    source = load_podman(load_json_file(src), src.name, "hydra-ai")
    t1 = time.perf_counter()
    conv = convert(
        source,
        EmitOptions(namespace="hydra-ai", host="hydra-ai", gpu_count=lambda v: 2),
    )
    t2 = time.perf_counter()
    rendered = dict(write.render(conv.files, src.name))  # force the lazy rendering here
    t3 = time.perf_counter()
    write.write_tree(work / f"phases-{n}", rendered)
    t4 = time.perf_counter()
    return {"parse": t1 - t0, "emit": t2 - t1, "yaml": t3 - t2, "write": t4 - t3}


def help_time() -> float:
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "hydradeploy", "--help"],
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[100, 1000, 10000])
    ap.add_argument("--base", type=Path, help="another checkout to compare with")
    ap.add_argument(
        "--runs", type=int, default=5, help="runs per size and checkout (median)"
    )
    args = ap.parse_args()
    roots = [REPO] + ([args.base.resolve()] if args.base else [])
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {args.runs} runs"
    )
    print(
        f"{'containers':>10} {'wall s':>8} {'user s':>7} {'sys s':>6} {'per 1k s':>9} {'peak MB':>8} {'files':>6}   in-process: parse / emit / yaml / write s"
    )
    results = {}
    # inside the repository, where k8s/converted/ lives (on this machine /tmp is several
    # times slower at creating files, which would measure the file system, not the tool)
    with tempfile.TemporaryDirectory(prefix=".bench-convert-", dir=REPO) as tmp:
        for n in args.sizes:
            per_root, files = run_convert(n, Path(tmp), roots, args.runs)
            wall, user, system, peak = per_root[REPO]
            results[n] = wall
            ph = phases(n, Path(tmp))
            split = " / ".join(
                f"{ph[k]:.2f}" for k in ("parse", "emit", "yaml", "write")
            )
            print(
                f"{n:>10} {wall:>8.2f} {user:>7.2f} {system:>6.2f} {wall / n * 1000:>9.3f} {peak:>8.1f} {files:>6}   {split}"
            )
            if args.base:
                bwall, buser, bsystem, bpeak = per_root[roots[1]]
                print(
                    f"{'base':>10} {bwall:>8.2f} {buser:>7.2f} {bsystem:>6.2f} {bwall / n * 1000:>9.3f} {bpeak:>8.1f}"
                )
                print(
                    f"{'':>10} this/base: wall {wall / bwall:.2f}×, user CPU {user / buser:.2f}×, "
                    f"CPU {(user + system) / (buser + bsystem):.2f}×"
                )
    if 1000 in results and 10000 in results:
        print(
            f"growth 1,000 → 10,000: {results[10000] / results[1000]:.1f}× (linear would be 10×)"
        )
    print(f"hydradeploy --help: {help_time() * 1000:.0f} ms (median of 5)")


if __name__ == "__main__":
    main()
