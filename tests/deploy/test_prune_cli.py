"""Bad usage of `prune` and `deploy --prune`: one line naming what is wrong, exit 2."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["prune", "--server", "ghost"], "no host 'ghost'"),
        (["prune", "--server", "hydra-compute"], "hydra-compute is not a k3s server"),
        (["prune", "--output", "yaml"], "--output"),
        (
            ["deploy", "--all", "--prune", "--mode", "boot"],
            "--prune needs --mode switch or test",
        ),
    ],
)
def test_prune_usage_errors(cli, args, says):
    res = cli(*args)
    assert res.returncode == 2, res.stderr
    assert says in res.stderr
    assert "Traceback" not in res.stderr
