from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from secrets_helpers import Repo, git, keygen

HOSTS = {"srv": "server", "w1": "agent", "w2": "agent"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if shutil.which("age") is None or shutil.which("ssh-keygen") is None:
        skip = pytest.mark.skip(reason="needs the age and ssh-keygen commands")
        for item in items:
            if "tests/secrets" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def keyset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Host keys for srv, w1, w2, a spare host, and two admins: made once, real."""
    d = tmp_path_factory.mktemp("keys")
    return {n: keygen(d / n, n) for n in ("srv", "w1", "w2", "w3", "admin", "admin2")}


@pytest.fixture
def repo(tmp_path: Path, keyset: dict[str, Path]) -> Repo:
    r = Repo(tmp_path / "repo", dict(keyset))
    r.root.mkdir()
    git(r.root, "init", "-q")
    (r.root / ".gitignore").write_text("/secrets/plain/\n")
    r.write_inventory(HOSTS)
    return r
