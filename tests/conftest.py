"""Shared fixtures: the repository root, the real CLI, and the lab of test hosts.

Tests import helpers from uniquely named modules (cli_runner), never from `conftest`:
sub-directories have conftest files of their own that would shadow this one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_runner import REPO, run_cli

pytest_plugins = ["lab_plugin"]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture
def cli() -> Callable[..., Any]:
    return run_cli
