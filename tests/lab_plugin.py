"""pytest fixtures for the lab (registered by tests/conftest.py; test-only, so it lives
here and not in the package).

    def test_x(lab_factory):                       # module-scoped: one lab per module
        lab = lab_factory([HostSpec("srv", "server"), HostSpec("w1", "agent")])
        lab = lab_factory(inventory=Path("hosts/inventory.toml"))

Labs are torn down at the end of the module even when tests fail; labs left by a test
run that was killed are reaped when the next session starts. Skips (with the reason)
when not root or sshd / nix-store / ip are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hydradeploy.lab.lab import Lab
from hydradeploy.lab.requirements import missing
from hydradeploy.lab.spec import HostSpec
from hydradeploy.lab.teardown import reap_orphans

LabFactory = Callable[..., Lab]


def pytest_sessionstart(session: pytest.Session) -> None:
    if missing() is None:
        reap_orphans()


@pytest.fixture(scope="module")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    labs: list[Lab] = []

    def make(
        specs: Sequence[HostSpec] | None = None,
        *,
        inventory: Path | None = None,
        **options: Any,
    ) -> Lab:
        reason = missing()
        if reason:
            pytest.skip(reason)
        lab = Lab(tmp_path_factory.mktemp("lab") / "lab", ephemeral=True, **options)
        labs.append(lab)
        if inventory is not None:
            lab.up_from_inventory(inventory)
        else:
            lab.up(specs or [])
        return lab

    yield make
    for lab in labs:
        lab.down()
