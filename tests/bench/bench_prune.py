"""Benchmark of `hydradeploy prune` against the lab: prints figures, asserts nothing.
Needs root.

    .venv/bin/python tests/bench/bench_prune.py [--files 20] [--removed 10]

A server deploys FILES manifests (a namespace, a ConfigMap, a Secret, a Deployment and a
Service each), then a closure without REMOVED of them; prints the time of
`prune --dry-run` and of `prune`, the rows, and the kubectl calls (SSH commands) each made.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydradeploy.lab import HostSpec, Lab
from hydradeploy.lab.requirements import missing

APP = """\
apiVersion: v1
kind: Namespace
metadata: {{name: app{n}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: app{n}}}
data: {{a: "1"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec, namespace: app{n}}}
stringData: {{b: "2"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: app{n}}}
spec: {{selector: {{matchLabels: {{app: web}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: app{n}}}
spec: {{ports: [{{port: 80}}]}}
"""


def tree(root: Path, names: range) -> Path:
    (root / "apps").mkdir(parents=True)
    for n in names:
        (root / "apps" / f"app{n}.yaml").write_text(APP.format(n=n))
    return root


def hd(lab: Lab, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "hydradeploy", "--inventory", str(lab.inventory_path), *args],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    return time.perf_counter() - start, res


def activate(lab: Lab, path: str) -> None:
    lab.copy_closure("srv", path)
    lab.run("srv", ["nix-env", "-p", "/nix/var/nix/profiles/system", "--set", path])
    lab.run("srv", [f"{path}/bin/switch-to-configuration", "switch"], timeout=120)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--removed", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0 or missing():
        print("bench_prune: needs root and the lab's tools", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmp:
        lab = Lab(Path(tmp) / "lab")
        try:
            lab.up([HostSpec("srv", "server")])
            all_files = tree(Path(tmp) / "all", range(args.files))
            kept = tree(Path(tmp) / "kept", range(args.removed, args.files))
            activate(lab, lab.closure("srv", manifests=all_files))
            activate(lab, lab.closure("srv", manifests=kept))
            t_dry, dry = hd(lab, "prune", "--dry-run", "--output", "json")
            t_run, run = hd(lab, "prune", "--output", "json")
            t_none, _ = hd(lab, "prune", "--dry-run", "--output", "json")
            rows = json.loads(dry.stdout or "[]")
            done = json.loads(run.stdout or "[]")
            print(f"files {args.files}, removed {args.removed}: {len(rows)} rows "
                  f"({sum(1 for r in rows if r['kind'] not in ('Addon', 'File'))} objects)")  # fmt: skip
            print(f"prune --dry-run        {t_dry:6.2f} s")
            print(
                f"prune (delete)         {t_run:6.2f} s, {sum(1 for r in done if r.get('done'))} deleted"
            )
            print(f"prune --dry-run after  {t_none:6.2f} s (nothing left)")
        finally:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
