"""Converter tests: make the helper modules beside this file importable."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def examples(repo: Path) -> Path:
    return repo / "hosts" / "examples"


@pytest.fixture(autouse=True)
def _snapshot_pods(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HYDRA_CONVERT_SNAPSHOT=FILE, the YAML of every pod the tests build goes to FILE
    (tmp paths masked): two versions of the converter, run over these tests, must write
    the same FILE (snapshot_outputs.py covers the CLI)."""
    target = os.environ.get("HYDRA_CONVERT_SNAPSHOT")
    if not target:
        return
    from hydradeploy.convert import emit, yaml_out

    build = emit.build_pod
    tmp = re.compile(r"/tmp/pytest-of-[^/]+/pytest-\d+/[^/\s\"']+")

    def recorded(pod: Any) -> Any:
        built = build(pod)
        text = yaml_out.dump_all(built.docs) + "".join(
            f"# secret {path}\n{yaml_out.dump_all([doc])}"
            for path, doc in sorted(built.secrets.items())
        )
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(f"### {request.node.nodeid} {pod.name}\n{tmp.sub('TMP', text)}")
        return built

    monkeypatch.setattr(emit, "build_pod", recorded)
