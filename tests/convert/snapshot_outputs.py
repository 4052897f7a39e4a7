#!/usr/bin/env python3
"""Converts a broad set of inputs with this checkout's CLI and keeps every output, so two
versions of the converter can be compared byte for byte (a speed-up must not change a
byte). Prints nothing but errors; compare two runs with `diff -r`.

    .venv/bin/python tests/convert/snapshot_outputs.py DIR

Inputs: the repository's examples (podman host, compose stack), the benchmark's
generated hosts (100 and 1,000 containers), and kompose's compose fixtures when
HYDRA_KOMPOSE_FIXTURES points at them. Per input DIR/<case>/ holds the output tree,
the Secrets, the JSON report (every note, the cluster-fit problems included) and the
summary. The in-process conversions of the tests are covered by running
tests/convert with HYDRA_CONVERT_SNAPSHOT=FILE (conftest.py writes every pod's YAML).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "bench"))


def run(case: str, root: Path, args: list[str]) -> None:
    """One conversion into root/case (paths relative to root, so reports match)."""
    (root / case).mkdir(parents=True)
    argv = [sys.executable, "-m", "hydradeploy", "convert", *args,
            "--out", f"{case}/out", "--secrets-dir", f"{case}/secrets",
            "--report", f"{case}/report.json"]  # fmt: skip
    env = {**os.environ, "HYDRA_ROOT": str(REPO), "HOME": "/home/user"}
    proc = subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, check=False
    )
    (root / case / "summary.txt").write_text(f"exit {proc.returncode}\n{proc.stderr}")


def main() -> None:
    from bench_convert import generate

    root = Path(sys.argv[1]).resolve()
    root.mkdir(parents=True, exist_ok=False)
    examples = REPO / "hosts" / "examples"
    run("podman-example", root, ["podman-to-k8s", "--json", str(examples / "podman-host" / "containers.json"), "--host", "hydra-ai"])  # fmt: skip
    run("compose-example", root, ["compose-to-k8s", str(examples / "compose" / "docker-compose.yml"), "--host", "hydra-ai", "--project-dir", "/srv/ai-system"])  # fmt: skip
    for n in (100, 1000):
        src = root / f"bench-{n}.json"
        generate(n, src)
        run(
            f"bench-{n}",
            root,
            ["podman-to-k8s", "--json", src.name, "--host", "hydra-ai"],
        )
    fixtures = os.environ.get("HYDRA_KOMPOSE_FIXTURES")
    if fixtures:
        for i, path in enumerate(sorted(Path(fixtures).rglob("*.y*ml"))):
            if path.name.startswith("output") or "output" in path.parent.name:
                continue
            run(
                f"kompose-{i:03d}",
                root,
                ["compose-to-k8s", str(path), "--host", "hydra-ai"],
            )


if __name__ == "__main__":
    main()
