"""Converter tests: make the helper modules beside this file importable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def examples(repo: Path) -> Path:
    return repo / "hosts" / "examples"
