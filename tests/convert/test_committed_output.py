"""k8s/converted/ is committed: it must be what the converter writes today from the
repository's examples, with the commands `just convert` runs (read from the justfile,
so the test follows the recipe)."""

from __future__ import annotations

import shlex
from pathlib import Path

from convert_helpers import run_cli

REPO = Path(__file__).resolve().parents[2]


def convert_recipe() -> list[list[str]]:
    """The hydradeploy argv of each line of the justfile's `convert` recipe."""
    lines = (REPO / "justfile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("convert *ARGS:"))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        argv = shlex.split(line.strip().replace("{{ARGS}}", ""))
        assert argv[0] == "hydradeploy", line
        out.append(argv[1:])
    return out


def test_the_committed_conversion_is_what_the_converter_writes_now() -> None:
    recipe = convert_recipe()
    assert len(recipe) == 2  # the podman host and the compose stack
    for argv in recipe:
        res = run_cli(*argv, "--check")
        assert res.returncode == 0, (
            f"{shlex.join(argv)} --check:\n{res.stdout}{res.stderr}"
        )
        assert "up to date" in res.stdout + res.stderr
